import type { Engine } from '../types.js';
import type { GroupOffsetRecord, OffsetKey, OffsetStore } from '../groups/index.js';

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
        if (!record.key) continue;
        const key = Buffer.from(record.key).toString('utf8');
        if (!record.value) {
          // A tombstone: the topic was deleted (forget()).
          latest.delete(key);
          continue;
        }
        const [group, topic, partition] = JSON.parse(key) as [string, string, number];
        const value = JSON.parse(Buffer.from(record.value).toString('utf8')) as StoredOffset;
        latest.set(key, { group, topic, partition, ...value });
      }
      offset = batch.nextOffset;
    }
    const topics = new Set((await this.engine.listTopics()).map((t) => t.name));
    return [...latest.values()].filter((r) => topics.has(r.topic));
  }

  /** Tombstones for the keys: compaction removes them later; load() skips what they cover. */
  async forget(keys: readonly OffsetKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.engine.append(
      OFFSETS_TOPIC,
      0,
      keys.map((k) => ({ key: offsetKey(k), value: null })),
    );
  }

  async persist(records: readonly GroupOffsetRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.engine.append(
      OFFSETS_TOPIC,
      0,
      records.map((r) => ({
        key: offsetKey(r),
        value: Buffer.from(JSON.stringify({ offset: r.offset, metadata: r.metadata, committedAt: r.committedAt } satisfies StoredOffset)),
      })),
    );
  }
}

function offsetKey(k: OffsetKey): Buffer {
  return Buffer.from(JSON.stringify([k.group, k.topic, k.partition]));
}
