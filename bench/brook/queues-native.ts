import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { JetStreamQueueService } from '../../src/queues/jetstream/index.js';
import type { Job, JobHandler, QueueSystem } from '../lib/queue-system.js';
import { ServiceWorkers } from './service-workers.js';

const QUEUE = 'bench-jobs';
const NATS = process.env['BROOK_BENCH_NATS'] ?? 'nats://127.0.0.1:4222';

/**
 * Brook's JetStream-native queue backend in the bench process, as two "nodes" (two service
 * instances, one on the engine's NATS connection and one on a connection of its own) on one
 * prefix: enqueues alternate between them and the workers are spread over both, so the run also
 * shows that nodes share one queue. Workers lease up to `prefetch` jobs per receive and ack each
 * job with its own `ack` call (one JetStream ack request per job).
 */
export class BrookQueuesJetStreamNative implements QueueSystem {
  readonly name = 'brook-jetstream-native';
  readonly label = 'Brook JetStream-native (2 nodes, in-process)';
  readonly durability = 'enqueue resolves after the JetStream PubAck (file storage, R1, server flush policy); acks confirmed by JetStream';
  readonly workerModel: string;
  private engine: JetStreamEngine | null = null;
  private nc: NatsConnection | null = null;
  private nodes: JetStreamQueueService[] = [];
  private turn = 0;
  private readonly workers: ServiceWorkers;

  constructor(prefetch: number) {
    this.workerModel = `receive(max ${prefetch}) then one ack() call per job, workers alternating over 2 nodes`;
    this.workers = new ServiceWorkers(QUEUE, prefetch);
  }

  async start(): Promise<void> {
    const prefix = `BQN${randomBytes(4).toString('hex')}`;
    this.engine = new JetStreamEngine({ servers: NATS, prefix, logger: pino({ level: 'warn' }) });
    await this.engine.open();
    this.nc = await connect({ servers: NATS });
    this.nodes = [await JetStreamQueueService.open(this.engine.natsAccess()), await JetStreamQueueService.open({ nc: this.nc, prefix })];
    await this.nodes[0]!.configure(QUEUE, { maxDepth: 10_000_000, maxBytes: 4 * 1024 * 1024 * 1024 });
  }

  async enqueue(jobs: readonly Job[]): Promise<void> {
    const node = this.nodes[this.turn++ % this.nodes.length]!;
    await node.enqueue(
      QUEUE,
      jobs.map((job) => ({ value: Buffer.from(JSON.stringify(job)) })),
    );
  }

  async startWorkers(count: number, handler: JobHandler): Promise<void> {
    this.workers.start(count, handler, (w) => this.nodes[w % this.nodes.length]!);
    return Promise.resolve();
  }

  stopWorkers(): Promise<void> {
    return this.workers.stop();
  }

  async stop(): Promise<void> {
    await this.stopWorkers();
    try {
      await this.nodes[0]?.deleteQueue(QUEUE);
    } catch {
      // never created, or already gone
    }
    for (const node of this.nodes) await node.close();
    this.nodes = [];
    await this.nc?.close();
    this.nc = null;
    await this.engine?.destroy();
    await this.engine?.close();
    this.engine = null;
  }
}
