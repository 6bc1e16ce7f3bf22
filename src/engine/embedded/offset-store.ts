import type { Engine } from '../types.js';
import type { GroupOffsetRecord, OffsetStore } from '../groups/index.js';

/** Committed offsets live in Brook's own log: a compacted internal topic keyed by group/topic/partition. */
export const OFFSETS_TOPIC = '__consumer_offsets';

interface StoredOffset {
  readonly offset: number;
  readonly metadata: string;
  readonly committedAt: number;
}

export class InternalTopicOffsetStore implements OffsetStore {
  constructor(private readonly engine: Engine) {}

  async load(): Promise<GroupOffsetRecord[]> {
    const latest = new Map<string, GroupOffsetRecord>();
    const { lowWatermark, highWatermark } = await this.engine.watermarks(OFFSETS_TOPIC, 0);
    let offset = lowWatermark;
    while (offset < highWatermark) {
      const batch = await this.engine.read(OFFSETS_TOPIC, 0, offset, { maxRecords: 10_000, maxBytes: 4 * 1024 * 1024 });
      for (const record of batch.records) {
        if (!record.key || !record.value) continue;
        const key = Buffer.from(record.key).toString('utf8');
        const [group, topic, partition] = JSON.parse(key) as [string, string, number];
        const value = JSON.parse(Buffer.from(record.value).toString('utf8')) as StoredOffset;
        latest.set(key, { group, topic, partition, ...value });
      }
      offset = batch.nextOffset;
    }
    const topics = new Set((await this.engine.listTopics()).map((t) => t.name));
    return [...latest.values()].filter((r) => topics.has(r.topic));
  }

  async persist(records: readonly GroupOffsetRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.engine.append(
      OFFSETS_TOPIC,
      0,
      records.map((r) => ({
        key: Buffer.from(JSON.stringify([r.group, r.topic, r.partition])),
        value: Buffer.from(JSON.stringify({ offset: r.offset, metadata: r.metadata, committedAt: r.committedAt } satisfies StoredOffset)),
      })),
    );
  }
}
