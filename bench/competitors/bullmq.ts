import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Job as BullJob } from 'bullmq';
import type { Job, JobHandler, QueueSystem } from '../lib/queue-system.js';

const CONNECTION = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null } as const;

/**
 * BullMQ on the local Redis (127.0.0.1:6379), a queue with a unique name removed afterwards.
 * Enqueue is `addBulk` per batch; each worker is one BullMQ Worker with `concurrency` = prefetch,
 * completing (acknowledging) every job, completed jobs removed.
 */
export class BullMqSystem implements QueueSystem {
  readonly name = 'bullmq';
  readonly label = 'BullMQ 5 (local Redis)';
  durability = 'what the local Redis persists (checked at start)';
  readonly workerModel: string;
  private queue: Queue | null = null;
  private workers: Worker[] = [];
  private readonly queueName = `brook-bench-${process.pid}-${Date.now()}`;

  constructor(private readonly prefetch: number) {
    this.workerModel = `Worker × N, concurrency ${prefetch} each, job completed (acked) one by one`;
  }

  async start(): Promise<void> {
    const client = new Redis({ host: CONNECTION.host, port: CONNECTION.port, lazyConnect: true });
    let aof: string;
    let save: string;
    let fsync: string;
    try {
      await client.connect();
      [, aof] = (await client.config('GET', 'appendonly')) as [string, string];
      [, save] = (await client.config('GET', 'save')) as [string, string];
      [, fsync] = (await client.config('GET', 'appendfsync')) as [string, string];
    } finally {
      client.disconnect();
    }
    this.queue = new Queue(this.queueName, { connection: CONNECTION });
    this.durability =
      aof === 'yes'
        ? `Redis AOF on (appendfsync ${fsync}): ${fsync === 'always' ? 'fsynced before ack' : 'not fsynced before ack'}`
        : `Redis AOF off${save === '' ? ', RDB snapshots off' : `, RDB "${save}"`}: nothing is on disk at ack time`;
  }

  async enqueue(jobs: readonly Job[]): Promise<void> {
    await this.queue!.addBulk(jobs.map((data) => ({ name: 'job', data, opts: { removeOnComplete: true, removeOnFail: true } })));
  }

  async startWorkers(count: number, handler: JobHandler): Promise<void> {
    for (let w = 0; w < count; w++) {
      const worker = new Worker(
        this.queueName,
        async (job: BullJob<Job>) => {
          handler(job.data);
        },
        { connection: CONNECTION, concurrency: this.prefetch, autorun: true },
      );
      this.workers.push(worker);
    }
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
  }

  async stopWorkers(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.close()));
  }

  async stop(): Promise<void> {
    await this.stopWorkers();
    const queue = this.queue;
    this.queue = null;
    if (queue) {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }
}
