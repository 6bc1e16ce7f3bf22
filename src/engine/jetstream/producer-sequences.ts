import { OutOfOrderSequenceError } from '../errors.js';
import type { AppendResult } from '../types.js';

interface RecentBatch {
  readonly sequence: number;
  readonly count: number;
  readonly result: Promise<AppendResult>;
}

interface ProducerEntry {
  nextSequence: number;
  readonly recent: RecentBatch[];
}

export type SequenceCheck = { readonly kind: 'new' } | { readonly kind: 'duplicate'; readonly result: Promise<AppendResult> };

/**
 * What JetStream's deduplication does not do: refuse sequence gaps and answer retries of recent
 * batches without publishing again. Deduplication itself is JetStream's (`Nats-Msg-Id` within the
 * stream's `duplicate_window`), so a producer this memory has forgotten (restart, another Brook
 * node, eviction) is accepted at any sequence and its retries are still not stored twice.
 *
 * One LRU across all partitions, bounded by `maxProducers`; keys carry the topic's incarnation
 * id, so a deleted and recreated topic starts clean.
 */
export class ProducerSequences {
  private readonly entries = new Map<string, ProducerEntry>();

  constructor(
    private readonly maxProducers: number,
    private readonly batchesPerProducer: number,
  ) {}

  static key(topicId: string, partition: number, producerId: string): string {
    return `${topicId}/${partition}/${producerId}`;
  }

  check(key: string, producerId: string, sequence: number, count: number): SequenceCheck {
    const entry = this.entries.get(key);
    if (!entry || sequence === entry.nextSequence) return { kind: 'new' };
    if (sequence < entry.nextSequence) {
      const batch = entry.recent.find((b) => b.sequence === sequence && b.count === count);
      if (batch) return { kind: 'duplicate', result: batch.result };
    }
    throw new OutOfOrderSequenceError(producerId, entry.nextSequence, sequence);
  }

  record(key: string, sequence: number, count: number, result: Promise<AppendResult>): void {
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key);
    else entry = { nextSequence: 0, recent: [] };
    entry.nextSequence = sequence + count;
    entry.recent.push({ sequence, count, result });
    if (entry.recent.length > this.batchesPerProducer) entry.recent.shift();
    this.entries.set(key, entry);
    if (this.entries.size > this.maxProducers) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /** After a failed append: forget the producer, so its retry is accepted and JetStream dedups what was stored. */
  forget(key: string): void {
    this.entries.delete(key);
  }

  forgetTopic(topicId: string): void {
    const prefix = `${topicId}/`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }
}
