import { connect, createInbox, StorageType, type ConsumerMessages, type Msg, type NatsConnection, type NatsError } from 'nats';
import { FailureLog, type LatencySystem } from '../lib/latency-system.js';
import { NatsServer } from '../lib/nats-server.js';

const STREAM = 'LATENCY';
const SUBJECT = 'latency.0';

/**
 * NATS JetStream (file storage) on a nats-server of its own (lib/nats-server.ts): a JetStream
 * publish per record on one connection, an ordered pull consumer (`consume()`) on another.
 *
 * Publishing is JetStream's async-publish pattern, as in the log suite (`NatsJetStream`): a core
 * publish with a reply subject per record and its PubAck checked when it arrives. `js.publish`,
 * which makes each publish a request with its own timer, could not sustain 10,000 msg/s here
 * (the backlog grew to seconds), so its figure would measure nats.js's request path.
 */
export class NatsJetStreamLatency implements LatencySystem {
  readonly name = 'nats-jetstream' as const;
  readonly label = 'NATS JetStream';
  readonly durability = 'JetStream delivers a message once its file store has written it; it fsyncs every 2 minutes by default (sync_interval).';
  readonly how = 'JetStream publish per record with its PubAck checked (async-publish pattern), ordered consumer consume()';
  private readonly failureLog = new FailureLog();

  private server: NatsServer | null = null;
  private pub: NatsConnection | null = null;
  private sub: NatsConnection | null = null;
  private readonly inbox = createInbox();
  /** Publishes awaiting their PubAck, by reply subject. */
  private readonly acks = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  private nextReply = 0;
  private messages: ConsumerMessages | null = null;
  private consuming: Promise<void> = Promise.resolve();

  constructor(private readonly root: string) {}

  get failures(): readonly string[] {
    return this.failureLog.first;
  }

  async start(): Promise<void> {
    this.server = await NatsServer.start(this.root, 'nats-latency');
    this.pub = await connect({ servers: this.server.url, maxReconnectAttempts: 0 });
    this.sub = await connect({ servers: this.server.url, maxReconnectAttempts: 0 });
    const jsm = await this.pub.jetstreamManager();
    await jsm.streams.add({ name: STREAM, subjects: ['latency.>'], storage: StorageType.File, num_replicas: 1 });
    this.pub.subscribe(`${this.inbox}.>`, { callback: (err, msg) => this.onAck(err, msg) });
  }

  private onAck(err: NatsError | null, msg: Msg): void {
    if (err !== null) {
      for (const waiter of this.acks.values()) waiter.reject(err);
      this.acks.clear();
      return;
    }
    const waiter = this.acks.get(msg.subject);
    if (waiter === undefined) return;
    this.acks.delete(msg.subject);
    const ack = msg.json<{ seq?: number; error?: { description?: string } }>();
    if (ack.error !== undefined || typeof ack.seq !== 'number') waiter.reject(new Error(`JetStream refused a publish: ${ack.error?.description ?? JSON.stringify(ack)}`));
    else waiter.resolve();
  }

  async subscribe(onValue: (value: Uint8Array) => void): Promise<void> {
    if (this.sub === null) throw new Error('nats-jetstream is not started');
    const consumer = await this.sub.jetstream().consumers.get(STREAM);
    const messages = await consumer.consume();
    this.messages = messages;
    this.consuming = (async () => {
      for await (const m of messages) onValue(m.data);
    })().catch((err: unknown) => this.failureLog.push(err));
  }

  send(value: Buffer): Promise<unknown> {
    const nc = this.pub;
    if (nc === null) throw new Error('nats-jetstream is not started');
    const reply = `${this.inbox}.${this.nextReply++}`;
    return new Promise<void>((resolve, reject) => {
      this.acks.set(reply, { resolve, reject });
      nc.publish(SUBJECT, value, { reply });
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const waiter of this.acks.values()) waiter.reject(new Error('nats-jetstream stopped'));
    this.acks.clear();
    try {
      if (this.messages !== null) {
        await this.messages.close();
        await this.consuming;
      }
      for (const nc of [this.pub, this.sub]) if (nc !== null && !nc.isClosed()) await nc.close();
    } finally {
      this.pub = this.sub = null;
      this.messages = null;
      await server?.stop();
    }
  }
}
