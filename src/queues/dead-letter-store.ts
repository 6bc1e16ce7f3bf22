/**
 * A queue's dead letters: an append-only log (D adds a message with its history, X removes ids)
 * and, in memory, the letters in the order they were dead-lettered, bounded by
 * `max_dead_letters` (past it the oldest are discarded, logged and counted).
 */
import type { Logger } from 'pino';
import type { ProduceRecord, StoredRecord } from '../engine/index.js';
import { bareKey, jsonValue, metaKey, metaOf, parseJsonValue, Tag, tagOf, type DeadMeta } from './codec.js';
import type { QueueLog } from './storage.js';
import type { DeadLetter, DeadLetterReason, DeadLetterSelection } from './types.js';

/** What a message brings to the dead letters. */
export interface DeadLetterInput {
  readonly id: number;
  readonly value: Uint8Array;
  readonly key: string | null;
  readonly deliveries: number;
  readonly enqueuedAt: number;
  readonly lastError: string | null;
  /** Infinity when none. */
  readonly deadline: number;
  readonly priority: number;
}

interface Stored {
  readonly letter: DeadLetter;
  /** Offset of its D record: the first one kept pins the log. */
  readonly offset: number;
}

export class DeadLetterStore {
  private readonly letters = new Map<number, Stored>();
  /** Dead letters being written: truncation waits for them. */
  private pending = 0;
  /** Discarded past the bound, since start. */
  discarded = 0;

  constructor(
    private readonly log: QueueLog,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.letters.size;
  }

  has(id: number): boolean {
    return this.letters.has(id);
  }

  get(id: number): DeadLetter | undefined {
    return this.letters.get(id)?.letter;
  }

  async replay(): Promise<void> {
    await this.log.replay((r: StoredRecord) => {
      const tag = tagOf(r.key);
      if (tag === Tag.Dead) {
        const meta = metaOf<DeadMeta>(r.key!)!;
        this.letters.set(meta.i, { letter: letterOf(meta, r.value ?? new Uint8Array(0)), offset: r.offset });
      } else if (tag === Tag.Removed) {
        for (const id of parseJsonValue<number[]>(r.value)) this.letters.delete(id);
      }
    });
  }

  /** Writes `msgs` as dead letters (durable when it resolves), then enforces `max`. */
  async add(msgs: readonly DeadLetterInput[], reason: DeadLetterReason, now: number, max: number): Promise<void> {
    const records: ProduceRecord[] = new Array<ProduceRecord>(msgs.length);
    const letters: DeadLetter[] = new Array<DeadLetter>(msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      const msg = msgs[i]!;
      const meta: DeadMeta = { i: msg.id, n: msg.deliveries, t: msg.enqueuedAt, a: now, w: reason };
      if (msg.lastError !== null) meta.e = msg.lastError;
      if (msg.deadline !== Infinity) meta.d = msg.deadline;
      if (msg.priority !== 0) meta.p = msg.priority;
      if (msg.key !== null) meta.k = msg.key;
      records[i] = { key: metaKey(Tag.Dead, meta), value: msg.value };
      letters[i] = letterOf(meta, msg.value);
    }
    this.pending += msgs.length;
    let base: number;
    try {
      base = await this.log.append(records);
    } finally {
      this.pending -= msgs.length;
    }
    for (let i = 0; i < letters.length; i++) this.letters.set(msgs[i]!.id, { letter: letters[i]!, offset: base + i });
    const overflow = this.letters.size - max;
    if (overflow > 0) {
      const dropped: number[] = [];
      for (const id of this.letters.keys()) {
        if (dropped.length >= overflow) break;
        dropped.push(id);
      }
      this.discarded += dropped.length;
      this.logger.warn({ dropped: dropped.length, maxDeadLetters: max }, 'dead-letter queue full: oldest discarded');
      await this.remove(dropped);
    }
  }

  /**
   * Dead letters in the order they were dead-lettered, starting after the one with id `after`
   * (from the start when it is absent or no longer a dead letter).
   */
  list(limit: number, after?: number): DeadLetter[] {
    const out: DeadLetter[] = [];
    let collecting = after === undefined || !this.letters.has(after);
    for (const [id, { letter }] of this.letters) {
      if (!collecting) {
        collecting = id === after;
        continue;
      }
      out.push(letter);
      if (out.length >= limit) break;
    }
    return out;
  }

  select(selection: DeadLetterSelection, now: number): number[] {
    if ('ids' in selection) return selection.ids.map(Number).filter((id) => this.letters.has(id));
    const cutoff = 'olderThanMs' in selection ? now - selection.olderThanMs : Infinity;
    const out: number[] = [];
    for (const [id, { letter }] of this.letters) if (letter.deadLetteredAt <= cutoff) out.push(id);
    return out;
  }

  async remove(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.letters.delete(id);
    await this.log.append([{ key: bareKey(Tag.Removed), value: jsonValue(ids) }]);
  }

  /** Lets the log drop what lies below the oldest dead letter kept. */
  async truncate(): Promise<void> {
    if (this.pending > 0) return;
    let keep = this.log.nextOffset;
    for (const { offset } of this.letters.values()) {
      keep = offset;
      break;
    }
    await this.log.truncateBefore(keep);
  }
}

function letterOf(meta: DeadMeta, value: Uint8Array): DeadLetter {
  return {
    id: String(meta.i),
    value,
    key: meta.k ?? null,
    deliveries: meta.n,
    reason: meta.w,
    lastError: meta.e ?? null,
    enqueuedAt: meta.t,
    deadLetteredAt: meta.a,
    deadline: meta.d ?? null,
    priority: meta.p ?? 0,
  };
}
