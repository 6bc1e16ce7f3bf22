import type { BrookClient, Consumer, Producer } from '../../src/client/index.js';
import { FailureLog, type LatencySystem } from '../lib/latency-system.js';
import { BrookProcess } from './process.js';
import { ClientErrors, sdkClient } from './sdk-client.js';

const TOPIC = 'latency';

/**
 * Brook's SDK against the Brook server (child process, embedded engine, default durability):
 * one client publishing, another consuming, each on its own WebSocket.
 */
export class BrookSdkLatency implements LatencySystem {
  readonly name = 'brook-sdk' as const;
  readonly label = 'Brook SDK';
  readonly durability =
    'Brook pushes a record once it is durable: after the group-committed O_DSYNC write (as fdatasync) that also acknowledges its producer (topic default durability "fsync").';
  readonly how = 'idempotent producer with lingerMs 0 (a batch forms only while earlier ones await their fsync), plain consumer, default credits';
  readonly errors = new ClientErrors();
  private readonly failureLog = new FailureLog();

  private process: BrookProcess | null = null;
  private publisher: BrookClient | null = null;
  private subscriber: BrookClient | null = null;
  private producer: Producer<string> | null = null;
  private consumer: Consumer<string> | null = null;
  private consuming: Promise<void> = Promise.resolve();

  constructor(
    private readonly root: string,
    private readonly serverBin: string,
  ) {}

  get failures(): readonly string[] {
    return [...this.failureLog.first, ...this.errors.seen];
  }

  async start(): Promise<void> {
    this.process = await BrookProcess.start(this.root, this.serverBin, 'latency');
    await this.process.createTopic(TOPIC, 1);
    this.publisher = sdkClient(this.process.url, this.errors, { reconnect: false });
    this.subscriber = sdkClient(this.process.url, this.errors, { reconnect: false });
    await Promise.all([this.publisher.connect(), this.subscriber.connect()]);
    this.producer = this.publisher.producer<string>({ topic: TOPIC, partition: 0, lingerMs: 0 });
  }

  async subscribe(onValue: (value: string) => void): Promise<void> {
    if (this.subscriber === null) throw new Error('brook-sdk is not started');
    const consumer = this.subscriber.consumer<string>({ topic: TOPIC, partition: 0, from: 'earliest' });
    this.consumer = consumer;
    await consumer.ready();
    this.consuming = (async () => {
      for await (const record of consumer) onValue(record.value);
    })().catch((err: unknown) => this.failureLog.push(err));
  }

  send(_value: Buffer, text: string): Promise<unknown> {
    if (this.producer === null) throw new Error('brook-sdk is not started');
    return this.producer.send({ value: text });
  }

  async stop(): Promise<void> {
    const process = this.process;
    this.process = null;
    try {
      await this.consumer?.close();
      await this.consuming;
      await Promise.all([this.publisher?.close(), this.subscriber?.close()]);
    } finally {
      this.publisher = this.subscriber = null;
      this.producer = null;
      this.consumer = null;
      await process?.stop();
    }
  }
}
