import { pino } from 'pino';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { FailureLog, type LatencySystem } from '../lib/latency-system.js';
import { NatsServer } from '../lib/nats-server.js';

const TOPIC = 'latency';

/**
 * Brook's JetStream engine (in the bench process) on a nats-server of its own, beside raw
 * JetStream on the same workload (issue #7: the engine's overhead): one engine instance appends
 * each record as it comes (the engine pipelines them), another reads it as a consumer would —
 * `waitForData` then `read` from the next offset.
 */
export class BrookJetStreamLatency implements LatencySystem {
  readonly name = 'brook-jetstream' as const;
  readonly label = 'Brook on JetStream';
  readonly durability = 'As raw JetStream: a record is readable once the file store has written it (topic durability "os"; fsync every sync_interval).';
  readonly how = 'engine.append per record (pipelined PubAcks), a second engine instance reading with waitForData + read';
  private readonly failureLog = new FailureLog();

  private server: NatsServer | null = null;
  private publisher: JetStreamEngine | null = null;
  private reader: JetStreamEngine | null = null;
  private stopping = new AbortController();
  private consuming: Promise<void> = Promise.resolve();

  constructor(private readonly root: string) {}

  get failures(): readonly string[] {
    return this.failureLog.first;
  }

  async start(): Promise<void> {
    this.server = await NatsServer.start(this.root, 'brook-js-latency');
    const logger = pino({ level: 'silent' });
    this.publisher = new JetStreamEngine({ servers: this.server.url, prefix: 'LAT', logger });
    this.reader = new JetStreamEngine({ servers: this.server.url, prefix: 'LAT', logger, name: 'brook-reader' });
    await this.publisher.open();
    await this.publisher.createTopic(TOPIC, { partitions: 1, durability: 'os' });
    await this.reader.open();
  }

  async subscribe(onValue: (value: Uint8Array) => void): Promise<void> {
    const reader = this.reader;
    if (reader === null) throw new Error('brook-jetstream is not started');
    const signal = this.stopping.signal;
    this.consuming = (async () => {
      let offset = 0;
      while (!signal.aborted) {
        const batch = await reader.read(TOPIC, 0, offset, { maxRecords: 1000 });
        for (const r of batch.records) if (r.value !== null) onValue(r.value);
        offset = batch.nextOffset;
        if (batch.records.length === 0) await reader.waitForData(TOPIC, 0, offset, { timeoutMs: 1000, signal });
      }
    })().catch((err: unknown) => {
      if (!signal.aborted) this.failureLog.push(err);
    });
  }

  send(value: Buffer): Promise<unknown> {
    if (this.publisher === null) throw new Error('brook-jetstream is not started');
    return this.publisher.append(TOPIC, 0, [{ value }]);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.consuming;
    try {
      await this.reader?.close();
      await this.publisher?.close();
    } finally {
      this.reader = this.publisher = null;
      await this.server?.stop();
      this.server = null;
      this.stopping = new AbortController();
    }
  }
}
