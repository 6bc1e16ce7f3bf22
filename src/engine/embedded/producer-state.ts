import { OutOfOrderSequenceError } from '../errors.js';
import type { AppendResult } from '../types.js';

/** What is remembered of one recent batch of a producer, to answer its retries. */
export interface RecentBatch {
  readonly sequence: number;
  readonly count: number;
  /** The append's outcome; a promise while the batch is still being written. */
  result: Promise<AppendResult> | AppendResult;
}

interface ProducerEntry {
  /** Next sequence expected, counting batches still being written. */
  nextSequence: number;
  /** Next sequence after the last batch known durable; what a snapshot may claim. */
  durableNextSequence: number;
  recent: RecentBatch[];
}

export type SequenceCheck =
  | { readonly kind: 'new' }
  | { readonly kind: 'duplicate'; readonly batch: RecentBatch };

export interface ProducerSnapshot {
  /** The partition offset this snapshot is valid up to (exclusive). */
  readonly offset: number;
  readonly producers: ReadonlyArray<{
    readonly id: string;
    readonly nextSequence: number;
    readonly recent: ReadonlyArray<{ sequence: number; count: number; result: AppendResult }>;
  }>;
}

/**
 * Idempotent producer state of one partition: for each producer id, the next expected sequence
 * and its last few batches. Bounded: the least recently active producer is forgotten first (a
 * forgotten producer is accepted at any sequence, as if new).
 */
export class ProducerState {
  private readonly producers = new Map<string, ProducerEntry>();

  constructor(
    private readonly maxProducers: number,
    private readonly batchesPerProducer: number,
  ) {}

  get size(): number {
    return this.producers.size;
  }

  check(id: string, sequence: number, count: number): SequenceCheck {
    const entry = this.producers.get(id);
    if (!entry || sequence === entry.nextSequence) return { kind: 'new' };
    if (sequence < entry.nextSequence) {
      const batch = entry.recent.find((b) => b.sequence === sequence && b.count === count);
      if (batch) return { kind: 'duplicate', batch };
    }
    throw new OutOfOrderSequenceError(id, entry.nextSequence, sequence);
  }

  record(id: string, batch: RecentBatch): void {
    let entry = this.producers.get(id);
    if (entry) this.producers.delete(id);
    else entry = { nextSequence: 0, durableNextSequence: batch.sequence, recent: [] };
    entry.nextSequence = batch.sequence + batch.count;
    entry.recent.push(batch);
    if (entry.recent.length > this.batchesPerProducer) entry.recent.shift();
    this.producers.set(id, entry);
    if (this.producers.size > this.maxProducers) {
      const oldest = this.producers.keys().next().value;
      if (oldest !== undefined) this.producers.delete(oldest);
    }
  }

  /** Marks a batch durable; batches of one partition become durable in the order they were sent. */
  settle(id: string, sequence: number, result: AppendResult): void {
    const entry = this.producers.get(id);
    if (!entry) return;
    const batch = entry.recent.find((b) => b.sequence === sequence);
    if (batch) batch.result = result;
    entry.durableNextSequence = Math.max(entry.durableNextSequence, sequence + result.count);
  }

  /** Snapshot of settled batches (pending ones are re-derived from the log on recovery). */
  snapshot(offset: number): ProducerSnapshot {
    const producers: Array<ProducerSnapshot['producers'][number]> = [];
    for (const [id, entry] of this.producers) {
      const recent = entry.recent.flatMap((b) =>
        b.result instanceof Promise ? [] : [{ sequence: b.sequence, count: b.count, result: b.result }],
      );
      producers.push({ id, nextSequence: entry.durableNextSequence, recent });
    }
    return { offset, producers };
  }

  restore(snapshot: ProducerSnapshot): void {
    this.producers.clear();
    for (const p of snapshot.producers) {
      this.producers.set(p.id, {
        nextSequence: p.nextSequence,
        durableNextSequence: p.nextSequence,
        recent: p.recent.map((b) => ({ sequence: b.sequence, count: b.count, result: b.result })),
      });
    }
  }
}
