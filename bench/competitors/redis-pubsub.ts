import type { Redis } from 'ioredis';
import { FailureLog, type LatencySystem } from '../lib/latency-system.js';
import { RedisServer } from '../lib/redis-server.js';

const CHANNEL = 'latency';

/**
 * Redis pub/sub on a redis-server of its own (in memory, no persistence): `PUBLISH` per record on
 * one connection, `SUBSCRIBE` on another. Nothing is stored, so this is a reference floor for
 * the round trip through a server, not a log.
 */
export class RedisPubSubLatency implements LatencySystem {
  readonly name = 'redis-pubsub' as const;
  readonly label = 'Redis pub/sub';
  readonly durability = 'Redis pub/sub forwards a message to the subscribers connected at that moment and keeps nothing (no log, no persistence).';
  readonly how = 'PUBLISH per record (reply not serialised), SUBSCRIBE on a second connection';
  private readonly failureLog = new FailureLog();

  private server: RedisServer | null = null;
  private pub: Redis | null = null;
  private sub: Redis | null = null;

  constructor(private readonly root: string) {}

  get failures(): readonly string[] {
    return this.failureLog.first;
  }

  async start(): Promise<void> {
    this.server = await RedisServer.start(this.root, 'redis-pubsub');
    this.pub = await this.server.connect();
    this.sub = await this.server.connect();
    for (const connection of [this.pub, this.sub]) connection.on('error', (err: unknown) => this.failureLog.push(err));
  }

  async subscribe(onValue: (value: Uint8Array) => void): Promise<void> {
    if (this.sub === null) throw new Error('redis-pubsub is not started');
    this.sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => onValue(message));
    await this.sub.subscribe(CHANNEL);
  }

  send(value: Buffer): Promise<unknown> {
    const pub = this.pub;
    if (pub === null) throw new Error('redis-pubsub is not started');
    return pub.publish(CHANNEL, value);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    try {
      this.pub?.disconnect();
      this.sub?.disconnect();
    } finally {
      this.pub = this.sub = null;
      await server?.stop();
    }
  }
}
