/**
 * Appends CDC records to the engine, in order, and tells when they are durable.
 *
 * One append in flight per partition; records arriving meanwhile wait in that partition's queue
 * and go out together in the next append (group commit on top of the engine's). So within a
 * partition records become durable in the order written, which the restart dedupe relies on
 * (docs/cdc.md, "Exactly once"). An append starts in a microtask, once the current replication
 * chunk has been decoded, so a transaction that arrives in one chunk is one append (one fsync),
 * not its first row alone and then the rest. Topics in `linger` (the transactions topic) are
 * appended at most every `linger.ms` instead: nobody waits on them record by record, and an
 * append of their own per transaction doubled the fsyncs of a small-transaction stream.
 * Everything not yet durable counts against `maxBufferedBytes`;
 * `onPressure(true)` asks the caller to stop reading (pause the replication socket) and
 * `onPressure(false)` to resume once below half.
 */
import { Fifo } from '../lib/fifo.js';
import type { Engine, ProduceRecord } from '../engine/index.js';

/** Something waiting for a set of records to be durable (a transaction, a snapshot chunk). */
export interface DurabilityWaiter {
  outstanding: number;
}

interface Pending {
  readonly record: ProduceRecord;
  readonly bytes: number;
  readonly waiter: DurabilityWaiter;
}

class PartitionQueue {
  /** Records waiting for the next append (slots cleared as they leave, so nothing outlives its write). */
  readonly queue = new Fifo<Pending>();
  inFlight = false;
  /** Waiting for the writer's next flush (a microtask, or the linger timer). */
  due = false;
  /** The linger timer while one is set. */
  timer: NodeJS.Timeout | null = null;
  constructor(
    readonly topic: string,
    readonly partition: number,
    /** 0: appended in the microtask after it is written to; else at most this often. */
    readonly lingerMs: number,
  ) {}
  get size(): number {
    return this.queue.length;
  }
}

export interface LogWriterOptions {
  readonly engine: Engine;
  readonly maxBufferedBytes: number;
  readonly maxBatchRecords: number;
  /** After each append: some waiters may have reached zero. */
  readonly onDurable: () => void;
  /** An append failed; the writer stops accepting records. */
  readonly onError: (err: unknown) => void;
  readonly onPressure: (paused: boolean) => void;
  /** Topics appended at most every `ms` (their records batched meanwhile) instead of at once. */
  readonly linger?: { readonly topics: ReadonlySet<string>; readonly ms: number };
}

export class LogWriter {
  private readonly partitions = new Map<string, PartitionQueue>();
  private buffered = 0;
  private paused = false;
  private failed: unknown = null;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  /** Partitions with records and no append in flight, flushed in one microtask. */
  private due: PartitionQueue[] = [];

  constructor(private readonly options: LogWriterOptions) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  write(topic: string, partition: number, record: ProduceRecord, waiter: DurabilityWaiter): void {
    // After a failed append nothing is written, and the waiter never completes: nothing after
    // the failure can be confirmed to PostgreSQL.
    if (this.failed !== null) {
      waiter.outstanding++;
      return;
    }
    const bytes = (record.value?.length ?? 0) + (record.key?.length ?? 0) + 64;
    const id = `${partition}:${topic}`;
    let q = this.partitions.get(id);
    if (!q) {
      const linger = this.options.linger;
      q = new PartitionQueue(topic, partition, linger !== undefined && linger.topics.has(topic) ? linger.ms : 0);
      this.partitions.set(id, q);
    }
    waiter.outstanding++;
    q.queue.push({ record, bytes, waiter });
    this.buffered += bytes;
    if (!this.paused && this.buffered > this.options.maxBufferedBytes) {
      this.paused = true;
      this.options.onPressure(true);
    }
    this.schedule(q);
  }

  /** Arranges the next append of `q`'s records, unless one is in flight or already arranged. */
  private schedule(q: PartitionQueue): void {
    if (q.inFlight || q.due || q.size === 0) return;
    q.due = true;
    if (q.lingerMs === 0) {
      if (this.due.push(q) === 1) queueMicrotask(this.flushDue);
      return;
    }
    q.timer = setTimeout(() => {
      q.timer = null;
      q.due = false;
      if (!q.inFlight) this.flush(q);
    }, q.lingerMs);
  }

  private readonly flushDue = (): void => {
    const due = this.due;
    this.due = [];
    for (const q of due) {
      q.due = false;
      if (!q.inFlight) this.flush(q);
    }
  };

  /**
   * Appends everything written so far without waiting for a microtask or linger timer, and
   * resolves once no append is in flight and nothing waits for one (used on stop, and before
   * re-reading positions for a new session). After a failure, queued records are never appended.
   */
  async idle(): Promise<void> {
    for (;;) {
      this.flushNow();
      if (this.inFlight === 0) return;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private flushNow(): void {
    if (this.due.length > 0) this.flushDue();
    for (const q of this.partitions.values()) {
      if (q.timer === null) continue;
      clearTimeout(q.timer);
      q.timer = null;
      q.due = false;
      this.flush(q);
    }
  }

  private flush(q: PartitionQueue): void {
    const n = Math.min(q.size, this.options.maxBatchRecords);
    if (n === 0 || this.failed !== null) return;
    const batch = new Array<Pending>(n);
    for (let i = 0; i < n; i++) batch[i] = q.queue.shift()!;
    q.inFlight = true;
    this.inFlight++;
    const records = batch.map((p) => p.record);
    this.options.engine.append(q.topic, q.partition, records).then(
      () => {
        q.inFlight = false;
        let bytes = 0;
        for (const p of batch) {
          bytes += p.bytes;
          p.waiter.outstanding--;
        }
        this.buffered -= bytes;
        this.settle();
        if (this.paused && this.buffered <= this.options.maxBufferedBytes / 2) {
          this.paused = false;
          this.options.onPressure(false);
        }
        this.options.onDurable();
        if (q.lingerMs === 0) this.flush(q);
        else this.schedule(q);
      },
      (err: unknown) => {
        // The batch's waiters keep their counts: they never complete.
        q.inFlight = false;
        this.settle();
        if (this.failed === null) {
          this.failed = err;
          this.options.onError(err);
        }
      },
    );
  }

  private settle(): void {
    this.inFlight--;
    if (this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
