import type { Redis } from 'ioredis';
import type { LogSystem } from '../lib/log-system.js';
import { RedisServer } from '../lib/redis-server.js';
import type { Batch, PartitionReader } from '../lib/workload.js';

/**
 * Redis Streams on a redis-server the bench starts on loopback, in memory only (no RDB, no AOF;
 * lib/redis-server.ts). A partition is one stream key; a batch is one pipeline of XADDs; reads
 * are XRANGE … COUNT from the last id seen (exclusive).
 */
export class RedisStreams implements LogSystem {
  readonly name = 'redis-streams' as const;
  readonly label = 'Redis Streams';
  readonly durability = 'Redis runs in memory with persistence off (--save "" --appendonly no): nothing is on disk at ack time.';

  private server: RedisServer | null = null;
  private redis: Redis | null = null;

  constructor(private readonly root: string) {}

  async start(): Promise<void> {
    this.server = await RedisServer.start(this.root, 'redis');
    try {
      this.redis = await this.server.connect();
    } catch (err) {
      await this.stop(); // the suite only stops systems that started
      throw err;
    }
  }
  private client(): Redis {
    if (this.redis === null) throw new Error('redis-streams is not started');
    return this.redis;
  }

  private key(topic: string, partition: number): string {
    return `bench:${topic}:${partition}`;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    const keys = Array.from({ length: partitions }, (_, p) => this.key(topic, p));
    await this.client().del(...keys);
  }

  async publish(topic: string, batch: Batch): Promise<void> {
    const pipeline = this.client().pipeline();
    const key = this.key(topic, batch.partition);
    for (const value of batch.values) pipeline.xadd(key, '*', 'v', value as Buffer);
    const results = await pipeline.exec();
    if (results === null) throw new Error('pipeline discarded');
    for (const [err] of results) if (err) throw err;
  }

  async reader(topic: string, partition: number): Promise<PartitionReader> {
    const redis = this.client();
    const key = this.key(topic, partition);
    let start = '-';
    return {
      async next(max) {
        const entries = await redis.xrangeBuffer(key, start, '+', 'COUNT', max);
        let bytes = 0;
        for (const [, fields] of entries) bytes += fields[1]?.length ?? 0;
        const last = entries.at(-1);
        if (last !== undefined) start = `(${last[0].toString('latin1')}`;
        return { count: entries.length, bytes };
      },
      async close() {},
    };
  }

  async deleteTopic(topic: string): Promise<void> {
    const redis = this.client();
    const keys = await redis.keys(`bench:${topic}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }

  async stop(): Promise<void> {
    try {
      if (this.redis !== null) this.redis.disconnect();
    } finally {
      this.redis = null;
      const server = this.server;
      this.server = null;
      await server?.stop();
    }
  }
}
