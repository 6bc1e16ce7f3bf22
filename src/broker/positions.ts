import { OffsetOutOfRangeError, type Engine, type TopicPartition } from '../engine/index.js';
import type { From } from './frames.js';

/** Where a subscription starts, and the partition's high watermark at that moment. */
export interface StartPosition {
  readonly offset: number;
  readonly highWatermark: number;
}

/**
 * Resolves a `from` of a subscribe or seek frame. An explicit offset outside the partition's
 * range is refused (OFFSET_OUT_OF_RANGE); a group's committed offset is clamped into the range
 * (retention may have removed it), and a group with no commit starts at the earliest offset.
 */
export async function resolveFrom(engine: Engine, topic: string, partition: number, from: From): Promise<StartPosition> {
  if (typeof from === 'object' && 'group' in from) {
    const [position] = await committedPositions(engine, from.group, [{ topic, partition }]);
    return position!;
  }
  const { lowWatermark, highWatermark } = await engine.watermarks(topic, partition);
  if (from === 'earliest') return { offset: lowWatermark, highWatermark };
  if (from === 'latest') return { offset: highWatermark, highWatermark };
  if ('timestamp' in from) {
    return { offset: await engine.offsetForTimestamp(topic, partition, from.timestamp), highWatermark };
  }
  if (from.offset < lowWatermark || from.offset > highWatermark) {
    throw new OffsetOutOfRangeError(from.offset, lowWatermark, highWatermark);
  }
  return { offset: from.offset, highWatermark };
}

/** The group's committed offset of each partition (earliest when none), clamped into range; in order. */
export async function committedPositions(
  engine: Engine,
  group: string,
  partitions: readonly TopicPartition[],
): Promise<StartPosition[]> {
  const topics = [...new Set(partitions.map((p) => p.topic))];
  const committed = new Map<string, number>();
  await Promise.all(
    topics.map(async (topic) => {
      for (const c of await engine.fetchOffsets(group, topic)) committed.set(`${c.partition}:${topic}`, c.offset);
    }),
  );
  return Promise.all(
    partitions.map(async ({ topic, partition }) => {
      const { lowWatermark, highWatermark } = await engine.watermarks(topic, partition);
      const offset = committed.get(`${partition}:${topic}`) ?? lowWatermark;
      return { offset: Math.min(Math.max(offset, lowWatermark), highWatermark), highWatermark };
    }),
  );
}
