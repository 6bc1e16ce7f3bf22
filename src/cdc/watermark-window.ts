/**
 * The watermark window of one incremental-snapshot chunk (docs/cdc.md, "Incremental snapshots"),
 * DBLog-style. Pure and synchronous: the stream pipeline reports logical messages and changed keys
 * in stream order (StreamObserver), the snapshot runner hands over the chunk it read.
 *
 * ```
 * stream:  ... L(low) ─── changes of the table ─── H(high) ...
 *                 │   every key seen here is dropped   │ the rest of the chunk is appended
 *                 │   from the chunk (it was changed   │ here as `r`, in stream order
 *                 │   around the SELECT)               │
 * runner:  emit L → SELECT chunk → setRows → emit H
 * ```
 *
 * A key changed between L and H may have been read before or after its change; either way its
 * stream event carries the row, so the chunk drops it. A row with no change between L and H had
 * the value the SELECT saw at every point of the window, in particular at H.
 */
import type { ObservedTransaction, StreamObserver } from './stream-pipeline.js';

/** Prefix of the watermark messages (`pg_logical_emit_message(true, prefix, 'low:<id>')`). */
export const WATERMARK_PREFIX = 'brook.snapshot';

/**
 * Keys remembered when changes arrive after L but before the chunk was handed over (the stream is
 * ahead of the SELECT). Past it the chunk is read again: its window cannot be checked.
 */
export const MAX_EARLY_KEYS = 100_000;

export interface ChunkRow<R> {
  readonly keyText: string;
  readonly row: R;
}

/** What the window hands to the caller at the high watermark. */
export type WindowOutcome<R> =
  | { readonly kind: 'emitted'; readonly rows: readonly R[]; readonly tx: ObservedTransaction }
  /** More early keys than MAX_EARLY_KEYS: nothing emitted, read the chunk again. */
  | { readonly kind: 'overflow' };

type State = 'pending' | 'open' | 'closed';

export class ChunkWindow<R> {
  private state: State = 'pending';
  private rows: Map<string, R> | null = null;
  private early: Set<string> | null = new Set();
  private truncated = false;
  private overflowed = false;
  private readonly settled: Promise<WindowOutcome<R>>;
  private resolve!: (outcome: WindowOutcome<R>) => void;
  private reject!: (err: unknown) => void;

  constructor(
    /** Unique per chunk attempt; the watermark messages carry it. */
    readonly id: string,
    /** The table whose changes count. */
    readonly oid: number,
    /** Called at the high watermark, in stream order, with the rows to append on `tx`. */
    private readonly onHigh: (rows: readonly R[], tx: ObservedTransaction) => void,
  ) {
    this.settled = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.settled.catch(() => undefined); // observed through `outcome`
  }

  /** Settles at the high watermark, or rejects when the session ends first. */
  get outcome(): Promise<WindowOutcome<R>> {
    return this.settled;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** The chunk as read; must come before the high watermark is emitted. */
  setRows(rows: readonly ChunkRow<R>[]): void {
    const map = new Map<string, R>();
    for (const r of rows) map.set(r.keyText, r.row);
    if (this.truncated) map.clear();
    else if (this.early !== null) for (const key of this.early) map.delete(key);
    this.early = null;
    this.rows = map;
  }

  low(): void {
    if (this.state === 'pending') this.state = 'open';
  }

  change(keyText: string | null): void {
    if (this.state !== 'open') return;
    if (keyText === null) {
      this.truncated = true;
      this.rows?.clear();
      this.early?.clear();
      return;
    }
    if (this.rows !== null) {
      this.rows.delete(keyText);
      return;
    }
    if (this.early === null || this.truncated || this.overflowed) return;
    if (this.early.size >= MAX_EARLY_KEYS) {
      this.overflowed = true;
      this.early.clear();
      return;
    }
    this.early.add(keyText);
  }

  high(tx: ObservedTransaction | null): void {
    if (this.state !== 'open') return;
    this.state = 'closed';
    if (this.rows === null || tx === null) {
      // The runner emits H only after setRows, and emits it in a transaction; anything else is a bug.
      this.reject(new Error(`watermark window ${this.id}: high watermark without a chunk or outside a transaction`));
      return;
    }
    if (this.overflowed) {
      this.resolve({ kind: 'overflow' });
      return;
    }
    const rows = [...this.rows.values()];
    this.onHigh(rows, tx);
    this.resolve({ kind: 'emitted', rows, tx });
  }

  fail(err: unknown): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.reject(err);
  }
}

/**
 * The pipeline's observer for one session: routes watermark messages and changed keys to the one
 * open window (one incremental snapshot runs per source, one chunk at a time).
 */
export class WatermarkObserver implements StreamObserver {
  private window: ChunkWindow<unknown> | null = null;

  /** Registers the next chunk's window; one at a time. */
  open<R>(window: ChunkWindow<R>): void {
    if (this.window !== null) throw new Error(`watermark window ${this.window.id} is still open`);
    this.window = window as ChunkWindow<unknown>;
  }

  /** Forgets the window once its outcome is known (or the runner gave up on it). */
  release(window: ChunkWindow<unknown>): void {
    if (this.window === window) this.window = null;
  }

  /** The session ended: the window in progress can never close. */
  fail(err: unknown): void {
    this.window?.fail(err);
    this.window = null;
  }

  change(oid: number, keyText: string | null): void {
    const w = this.window;
    if (w !== null && w.oid === oid) w.change(keyText);
  }

  message(prefix: string, content: Uint8Array, tx: ObservedTransaction | null): void {
    const w = this.window;
    if (w === null || prefix !== WATERMARK_PREFIX) return;
    const text = Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('utf8');
    if (text === `low:${w.id}`) w.low();
    else if (text === `high:${w.id}`) w.high(tx);
  }
}
