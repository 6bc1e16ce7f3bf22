import { compareStrings } from './assignors/index.js';
import type { CommittedOffset } from '../types.js';

interface Entry {
  readonly offset: CommittedOffset;
  /** Order in which the commit was issued; a commit whose store write finishes late must not win. */
  readonly sequence: number;
}

/**
 * The committed offsets of one group: at most one entry per partition of an existing topic, so
 * the size is bounded by the partitions the engine has.
 */
export class GroupOffsets {
  private readonly byTopic = new Map<string, Map<number, Entry>>();

  get isEmpty(): boolean {
    return this.byTopic.size === 0;
  }

  apply(offsets: readonly CommittedOffset[], sequence: number): void {
    for (const o of offsets) {
      let partitions = this.byTopic.get(o.topic);
      if (!partitions) this.byTopic.set(o.topic, (partitions = new Map()));
      const current = partitions.get(o.partition);
      if (current && current.sequence > sequence) continue;
      partitions.set(o.partition, {
        offset: { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata, committedAt: o.committedAt },
        sequence,
      });
    }
  }

  /** Sorted by topic, then partition. */
  list(topic?: string): CommittedOffset[] {
    const topics = topic === undefined ? [...this.byTopic.keys()].sort(compareStrings) : [topic];
    const out: CommittedOffset[] = [];
    for (const t of topics) {
      const partitions = this.byTopic.get(t);
      if (!partitions) continue;
      for (const p of [...partitions.keys()].sort((a, b) => a - b)) {
        const entry = partitions.get(p);
        if (entry) out.push(entry.offset);
      }
    }
    return out;
  }

  forgetTopic(topic: string): void {
    this.byTopic.delete(topic);
  }
}
