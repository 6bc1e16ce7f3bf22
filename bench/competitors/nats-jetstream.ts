import { connect, createInbox, StorageType, type JetStreamClient, type JetStreamManager, type Msg, type NatsConnection, type NatsError } from 'nats';
import type { LogSystem } from '../lib/log-system.js';
import { NatsServer } from '../lib/nats-server.js';
import type { Batch, PartitionReader } from '../lib/workload.js';

const ACK_TIMEOUT_MS = 60_000;

interface PendingBatch {
  left: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * NATS JetStream with file storage, on a nats-server the bench starts on loopback with its own
 * store directory (lib/nats-server.ts). A topic is one stream, a partition one subject in it (the
 * first plan of docs/engines.md; Brook's JetStream engine, `BrookJetStream`, ended up with one
 * stream per partition); reads are ordered consumers filtered on the partition subject, fetching
 * `batch` messages per request.
 *
 * Publishing is JetStream's async-publish pattern (what Go's `PublishAsync` does): core publishes
 * with a reply subject per batch, every PubAck checked. `js.publish` awaits each ack as its own
 * request with its own timer and reached about 12k msg/s here against about 175k for this, so
 * using it would measure nats.js rather than JetStream.
 */
export class NatsJetStream implements LogSystem {
  readonly name = 'nats-jetstream' as const;
  readonly label = 'NATS JetStream';
  readonly durability = 'JetStream acks after its file-store write; it fsyncs every sync_interval (2 min by default), not per ack.';

  private server: NatsServer | null = null;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private readonly inbox = createInbox();
  private nextBatch = 0;
  /** Batches awaiting acks, keyed by reply subject; at most the publish window. */
  private readonly pending = new Map<string, PendingBatch>();

  constructor(private readonly root: string) {}

  async start(): Promise<void> {
    this.server = await NatsServer.start(this.root, 'nats');
    this.nc = await connect({ servers: this.server.url, maxReconnectAttempts: 0 });
    this.jsm = await this.nc.jetstreamManager();
    this.js = this.nc.jetstream({ timeout: 60_000 });
    this.nc.subscribe(`${this.inbox}.>`, { callback: (err, msg) => this.onAck(err, msg) });
  }

  private onAck(err: NatsError | null, msg: Msg): void {
    if (err !== null) {
      for (const [reply, batch] of this.pending) this.settle(reply, batch, err);
      return;
    }
    const batch = this.pending.get(msg.subject);
    if (batch === undefined) return; // a late ack of a batch that already timed out and failed
    const ack = msg.json<{ seq?: number; error?: { description?: string } }>();
    if (ack.error !== undefined || typeof ack.seq !== 'number') {
      this.settle(msg.subject, batch, new Error(`JetStream refused a publish: ${ack.error?.description ?? JSON.stringify(ack)}`));
    } else if (--batch.left === 0) {
      this.settle(msg.subject, batch, null);
    }
  }

  private settle(reply: string, batch: PendingBatch, err: Error | null): void {
    clearTimeout(batch.timer);
    this.pending.delete(reply);
    if (err === null) batch.resolve();
    else batch.reject(err);
  }

  private streamName(topic: string): string {
    return `BENCH_${topic.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  private subject(topic: string, partition: number): string {
    return `bench.${topic}.${partition}`;
  }

  private client(): { js: JetStreamClient; jsm: JetStreamManager } {
    if (this.js === null || this.jsm === null) throw new Error('nats-jetstream is not started');
    return { js: this.js, jsm: this.jsm };
  }

  async createTopic(topic: string): Promise<void> {
    await this.client().jsm.streams.add({
      name: this.streamName(topic),
      subjects: [`bench.${topic}.>`],
      storage: StorageType.File,
      num_replicas: 1,
    });
  }

  publish(topic: string, batch: Batch): Promise<void> {
    const nc = this.nc;
    if (nc === null) return Promise.reject(new Error('nats-jetstream is not started'));
    const subject = this.subject(topic, batch.partition);
    const reply = `${this.inbox}.${this.nextBatch++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const pending = this.pending.get(reply);
        if (pending !== undefined) this.settle(reply, pending, new Error(`${pending.left} of ${batch.values.length} acks missing after ${ACK_TIMEOUT_MS} ms`));
      }, ACK_TIMEOUT_MS);
      this.pending.set(reply, { left: batch.values.length, resolve, reject, timer });
      for (const value of batch.values) nc.publish(subject, value, { reply });
    });
  }

  async reader(topic: string, partition: number): Promise<PartitionReader> {
    const consumer = await this.client().js.consumers.get(this.streamName(topic), {
      filterSubjects: this.subject(topic, partition),
    });
    return {
      async next(max) {
        // Asking for no more than what is left: a fetch for more would wait out `expires`.
        const messages = await consumer.fetch({ max_messages: max, expires: 10_000 });
        let count = 0;
        let bytes = 0;
        for await (const m of messages) {
          count++;
          bytes += m.data.length;
        }
        return { count, bytes };
      },
      async close() {
        await consumer.delete();
      },
    };
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.client().jsm.streams.delete(this.streamName(topic));
  }

  async stop(): Promise<void> {
    for (const [reply, batch] of this.pending) this.settle(reply, batch, new Error('nats-jetstream stopped'));
    try {
      if (this.nc !== null && !this.nc.isClosed()) await this.nc.close();
    } finally {
      this.nc = this.js = this.jsm = null;
      const server = this.server;
      this.server = null;
      await server?.stop();
    }
  }
}
