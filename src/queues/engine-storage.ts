import {
  type Durability,
  TopicExistsError,
  TopicNotFoundError,
  type Engine,
  type ProduceRecord,
  type StoredRecord,
  type TopicConfigInput,
} from '../engine/index.js';
import type { QueueLog, QueueLogs, QueueStorage } from './storage.js';

/** Internal topic names; `__queue.` and `__dlq.` prefixes cannot collide with each other. */
export const CATALOG_TOPIC = '__queues';
export const journalTopic = (queue: string): string => `__queue.${queue}`;
export const deadLetterTopic = (queue: string): string => `__dlq.${queue}`;

/** Small segments, so truncating finished messages frees disk soon after they finish. */
const LOG_TOPIC_CONFIG: TopicConfigInput = {
  partitions: 1,
  segmentBytes: 8 * 1024 * 1024,
  maxRecordBytes: 1024 * 1024 + 64 * 1024,
};
const CATALOG_TOPIC_CONFIG: TopicConfigInput = { partitions: 1, cleanupPolicy: 'compact' };
/** Bytes per engine append; a tick's records past it go in several appends (still in order). */
const MAX_APPEND_BYTES = 4 * 1024 * 1024;
const REPLAY_BATCH = { maxRecords: 5_000, maxBytes: 8 * 1024 * 1024 } as const;

/**
 * Queues on any Engine: per queue a journal topic and a dead-letter topic (one partition each),
 * and one compacted catalog topic keyed by queue name.
 */
export class EngineQueueStorage implements QueueStorage {
  /**
   * `fsync` wherever the engine offers it; an engine that cannot (JetStream without
   * `sync_interval: always`) gets its strongest mode, and `durability` says which.
   */
  readonly durability: Durability;

  private readonly logConfig: TopicConfigInput;

  constructor(
    private readonly engine: Engine,
    options: {
      /** Segment size of the journal and dead-letter topics: what truncation frees at a time. @defaultValue 8 MiB */
      readonly segmentBytes?: number;
    } = {},
  ) {
    this.durability = engine.capabilities.durabilityModes.includes('fsync') ? 'fsync' : 'os';
    this.logConfig = { ...LOG_TOPIC_CONFIG, durability: this.durability, ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}) };
  }

  async loadCatalog(): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    // Created by the first saveConfig: a server whose users never touch queues keeps no queue topics.
    try {
      await this.engine.describeTopic(CATALOG_TOPIC);
    } catch (err) {
      if (err instanceof TopicNotFoundError) return out;
      throw err;
    }
    await replayTopic(this.engine, CATALOG_TOPIC, (r) => {
      if (r.key === null) return;
      const name = Buffer.from(r.key).toString('utf8');
      if (r.value === null) out.delete(name);
      else out.set(name, JSON.parse(Buffer.from(r.value).toString('utf8')) as unknown);
    });
    return out;
  }

  async saveConfig(name: string, config: unknown): Promise<void> {
    await ensureTopic(this.engine, CATALOG_TOPIC, { ...CATALOG_TOPIC_CONFIG, durability: this.durability });
    const value = config === null ? null : Buffer.from(JSON.stringify(config));
    await this.engine.append(CATALOG_TOPIC, 0, [{ key: Buffer.from(name), value }]);
  }

  async open(name: string): Promise<QueueLogs> {
    await ensureTopic(this.engine, journalTopic(name), this.logConfig);
    await ensureTopic(this.engine, deadLetterTopic(name), this.logConfig);
    const [journal, deadLetters] = await Promise.all([
      EngineQueueLog.open(this.engine, journalTopic(name)),
      EngineQueueLog.open(this.engine, deadLetterTopic(name)),
    ]);
    return { journal, deadLetters };
  }

  async drop(name: string): Promise<void> {
    for (const topic of [journalTopic(name), deadLetterTopic(name)]) {
      try {
        await this.engine.deleteTopic(topic, { internal: true });
      } catch (err) {
        if (!(err instanceof TopicNotFoundError)) throw err;
      }
    }
  }
}

interface Waiter {
  /** Index of the caller's first record in the flushed batch. */
  readonly start: number;
  readonly resolve: (offset: number) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * One partition of a topic as a queue log. Appends made in one tick (every receive, ack and
 * enqueue arriving together) are written as one engine append, so a thousand acks cost one
 * batch and one fsync, not a thousand. The engine assigns offsets in call order, so the log's
 * order is the order in which callers called `append`.
 */
export class EngineQueueLog implements QueueLog {
  private pending: ProduceRecord[] = [];
  private pendingBytes = 0;
  private waiters: Waiter[] = [];
  private scheduled = false;
  private next: number;
  private low: number;

  private constructor(
    private readonly engine: Engine,
    private readonly topic: string,
    low: number,
    high: number,
  ) {
    this.low = low;
    this.next = high;
  }

  static async open(engine: Engine, topic: string): Promise<EngineQueueLog> {
    const w = await engine.watermarks(topic, 0);
    return new EngineQueueLog(engine, topic, w.lowWatermark, w.highWatermark);
  }

  get nextOffset(): number {
    return this.next;
  }

  get lowWatermark(): number {
    return this.low;
  }

  append(records: readonly ProduceRecord[]): Promise<number> {
    const start = this.pending.length;
    for (const r of records) {
      this.pending.push(r);
      this.pendingBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0) + 24;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return new Promise<number>((resolve, reject) => this.waiters.push({ start, resolve, reject }));
  }

  private flush(): void {
    this.scheduled = false;
    const records = this.pending;
    const waiters = this.waiters;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.waiters = [];
    this.pendingBytes = 0;
    if (records.length === 0) return;
    // Usually one chunk; a huge tick is split, each chunk appended in order right away.
    const chunks: { from: number; result: Promise<number> }[] = [];
    if (bytes <= MAX_APPEND_BYTES) {
      chunks.push({ from: 0, result: this.appendChunk(records) });
    } else {
      let from = 0;
      let size = 0;
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!;
        size += (r.key?.length ?? 0) + (r.value?.length ?? 0) + 24;
        if (size >= MAX_APPEND_BYTES || i === records.length - 1) {
          chunks.push({ from, result: this.appendChunk(records.slice(from, i + 1)) });
          from = i + 1;
          size = 0;
        }
      }
    }
    if (chunks.length === 1) {
      chunks[0]!.result.then(
        (base) => {
          for (const w of waiters) w.resolve(base + w.start);
        },
        (err: unknown) => {
          for (const w of waiters) w.reject(err);
        },
      );
      return;
    }
    Promise.all(chunks.map((c) => c.result)).then(
      (bases) => {
        for (const w of waiters) {
          let c = chunks.length - 1;
          while (chunks[c]!.from > w.start) c--;
          w.resolve(bases[c]! + (w.start - chunks[c]!.from));
        }
      },
      (err: unknown) => {
        for (const w of waiters) w.reject(err);
      },
    );
  }

  private async appendChunk(records: readonly ProduceRecord[]): Promise<number> {
    const result = await this.engine.append(this.topic, 0, records);
    this.next = Math.max(this.next, result.baseOffset + result.count);
    return result.baseOffset;
  }

  async replay(onRecord: (record: StoredRecord) => void): Promise<void> {
    const end = await replayTopic(this.engine, this.topic, onRecord);
    this.next = Math.max(this.next, end);
  }

  async truncateBefore(offset: number): Promise<void> {
    if (offset <= this.low) return;
    this.low = await this.engine.truncateBefore(this.topic, 0, Math.min(offset, this.next));
  }
}

async function ensureTopic(engine: Engine, topic: string, config: TopicConfigInput): Promise<void> {
  try {
    await engine.describeTopic(topic);
  } catch (err) {
    if (!(err instanceof TopicNotFoundError)) throw err;
    try {
      await engine.createTopic(topic, config, { internal: true });
    } catch (createErr) {
      if (!(createErr instanceof TopicExistsError)) throw createErr;
    }
  }
}

/** Reads partition 0 of `topic` from its low watermark to its high watermark; returns where it ended. */
async function replayTopic(engine: Engine, topic: string, onRecord: (record: StoredRecord) => void): Promise<number> {
  const w = await engine.watermarks(topic, 0);
  let offset = w.lowWatermark;
  while (offset < w.highWatermark) {
    const res = await engine.read(topic, 0, offset, REPLAY_BATCH);
    for (const r of res.records) onRecord(r);
    if (res.nextOffset <= offset) break;
    offset = res.nextOffset;
  }
  return offset;
}
