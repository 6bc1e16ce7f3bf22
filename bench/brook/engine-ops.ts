import type { Engine } from '../../src/engine/types.js';
import { READ_MAX_BYTES, type Batch, type PartitionReader } from '../lib/workload.js';

/**
 * How the bench drives any Brook `Engine` in-process (embedded, JetStream): one `append` per
 * batch, and `read` from offset 0 onwards, so every engine is measured through the same calls.
 */
export async function appendBatch(engine: Engine, topic: string, batch: Batch): Promise<void> {
  const result = await engine.append(
    topic,
    batch.partition,
    batch.values.map((value) => ({ value })),
  );
  if (result.count !== batch.values.length) throw new Error(`appended ${result.count} of ${batch.values.length}`);
}

/** A sequential `engine.read` reader of one partition from offset 0 that checks offsets are contiguous. */
export function engineReader(engine: Engine, topic: string, partition: number): PartitionReader {
  let offset = 0;
  return {
    async next(max) {
      const page = await engine.read(topic, partition, offset, { maxRecords: max, maxBytes: READ_MAX_BYTES });
      const records = page.records;
      let bytes = 0;
      for (const r of records) bytes += r.value?.length ?? 0;
      const first = records[0];
      const last = records.at(-1);
      if (first !== undefined && last !== undefined && (first.offset !== offset || last.offset !== offset + records.length - 1)) {
        throw new Error(`${topic}/${partition}: offsets ${first.offset}..${last.offset} where ${offset}.. was expected`);
      }
      offset = page.nextOffset;
      return { count: records.length, bytes };
    },
    async close() {},
  };
}

/** The LogSystem operations every in-process Brook engine shares; subclasses start and stop it. */
export abstract class EngineLogSystem {
  protected engine: Engine | null = null;

  protected abstract readonly name: string;

  protected started(): Engine {
    if (this.engine === null) throw new Error(`${this.name} is not started`);
    return this.engine;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.started().createTopic(topic, { partitions });
  }

  async publish(topic: string, batch: Batch): Promise<void> {
    await appendBatch(this.started(), topic, batch);
  }

  async reader(topic: string, partition: number): Promise<PartitionReader> {
    return engineReader(this.started(), topic, partition);
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.started().deleteTopic(topic);
  }
}
