import { pino } from 'pino';
import type { BrookClient, Worker } from '../../src/client/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { QueueManager } from '../../src/queues/index.js';
import type { BrookHttpClient } from './http-client.js';
import { BrookProcess } from './process.js';
import { ClientErrors, sdkClient } from './sdk-client.js';
import type { Job, JobHandler, QueueSystem } from '../lib/queue-system.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import { ServiceWorkers } from './service-workers.js';

const QUEUE = 'bench-jobs';
const WAIT_MS = 500;

/**
 * Brook's QueueManager in the bench process over an embedded engine in a temp directory: no
 * network, the queue's own cost. Enqueue is one `enqueue` call per batch (fsynced before it
 * resolves); every worker leases up to `prefetch` jobs per `receive` and acks each job with its
 * own `ack` call — the queue's group commit turns the acks of one tick into one append.
 */
export class BrookQueuesInProcess implements QueueSystem {
  readonly name = 'brook-inprocess';
  readonly label = 'Brook in-process (QueueManager API)';
  readonly durability = 'enqueue resolves after a durable write (O_DSYNC, group commit); deliveries and acks journaled and fsynced too';
  readonly workerModel: string;
  private engine: EmbeddedEngine | null = null;
  private queues: QueueManager | null = null;
  private dir: string | null = null;
  private readonly workers: ServiceWorkers;

  constructor(
    private readonly root: string,
    prefetch: number,
  ) {
    this.workerModel = `receive(max ${prefetch}) then one ack() call per job`;
    this.workers = new ServiceWorkers(QUEUE, prefetch);
  }

  async start(): Promise<void> {
    this.dir = makeTempDir(this.root, 'queues-inprocess');
    this.engine = new EmbeddedEngine({ dataDir: this.dir, logger: pino({ level: 'warn' }) });
    await this.engine.open();
    this.queues = await QueueManager.open({ engine: this.engine, logger: pino({ level: 'warn' }) });
    await this.queues.configure(QUEUE, { maxDepth: 10_000_000 });
  }

  async enqueue(jobs: readonly Job[]): Promise<void> {
    await this.queues!.enqueue(
      QUEUE,
      jobs.map((job) => ({ value: Buffer.from(JSON.stringify(job)) })),
    );
  }

  async startWorkers(count: number, handler: JobHandler): Promise<void> {
    const queues = this.queues!;
    this.workers.start(count, handler, () => queues);
    return Promise.resolve();
  }

  stopWorkers(): Promise<void> {
    return this.workers.stop();
  }

  async stop(): Promise<void> {
    await this.stopWorkers();
    await this.queues?.close();
    await this.engine?.close();
    this.queues = null;
    this.engine = null;
    if (this.dir !== null) await removeTempDir(this.dir);
    this.dir = null;
  }
}

/**
 * A Brook server child process (the built dist/), over HTTP/1.1 keep-alive on loopback: enqueue
 * is one `POST /v1/queues/{q}/messages` per batch; every worker long-polls
 * `POST …/receive {max: prefetch}` and acknowledges the batch it got with one `POST …/ack`.
 */
export class BrookQueuesHttp implements QueueSystem {
  readonly name = 'brook-http';
  readonly label = 'Brook over HTTP (server process)';
  readonly durability = 'enqueue answered after a durable write (O_DSYNC, group commit); deliveries and acks journaled and fsynced too';
  readonly workerModel: string;
  private process: BrookProcess | null = null;
  private workers: Promise<void>[] = [];
  private stopped = false;

  constructor(
    private readonly root: string,
    private readonly serverBin: string,
    private readonly prefetch: number,
  ) {
    this.workerModel = `POST receive (max ${prefetch}, long poll) then one POST ack of the receipts received`;
  }

  private get http(): BrookHttpClient {
    return this.process!.http;
  }

  async start(): Promise<void> {
    this.process = await BrookProcess.start(this.root, this.serverBin, 'queues-http', 32);
    await this.http.expect('PUT', `/v1/queues/${QUEUE}`, [200], JSON.stringify({ max_depth: 10_000_000 }));
  }

  async enqueue(jobs: readonly Job[]): Promise<void> {
    let body = '{"messages":[';
    for (let i = 0; i < jobs.length; i++) body += `${i === 0 ? '' : ','}{"value":${JSON.stringify(jobs[i])}}`;
    await this.http.expect('POST', `/v1/queues/${QUEUE}/messages`, [200], `${body}]}`);
  }

  async startWorkers(count: number, handler: JobHandler): Promise<void> {
    this.stopped = false;
    const receive = JSON.stringify({ max: this.prefetch, wait_ms: WAIT_MS });
    const work = async (worker: string): Promise<void> => {
      const request = receive.replace('{', `{"worker":"${worker}",`);
      while (!this.stopped) {
        const body = await this.http.expect('POST', `/v1/queues/${QUEUE}/receive`, [200], request);
        const { messages } = JSON.parse(body) as { messages: { receipt: string; value: Job }[] };
        if (messages.length === 0) continue;
        for (const m of messages) handler(m.value);
        await this.http.expect('POST', `/v1/queues/${QUEUE}/ack`, [204], JSON.stringify({ receipts: messages.map((m) => m.receipt) }));
      }
    };
    this.workers = Array.from({ length: count }, (_, w) => work(`w${w}`));
    return Promise.resolve();
  }

  async stopWorkers(): Promise<void> {
    this.stopped = true;
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers);
  }

  async stop(): Promise<void> {
    await this.stopWorkers();
    await this.process?.stop();
    this.process = null;
  }
}

/**
 * A Brook server child process over WebSocket with the SDK: enqueue is one `client.enqueue` per
 * batch (fsynced before it resolves); each worker is its own client running
 * `client.worker(queue, handler, { concurrency: prefetch })` — jobs pushed under credits, each
 * acknowledged when its handler returns (the SDK batches the acks of one tick into one frame).
 */
export class BrookQueuesWs implements QueueSystem {
  readonly name = 'brook-ws';
  readonly label = 'Brook over WebSocket (SDK worker)';
  readonly durability = 'enqueue answered after a durable write (O_DSYNC, group commit); deliveries and acks journaled and fsynced too';
  readonly workerModel: string;
  private process: BrookProcess | null = null;
  private producer: BrookClient | null = null;
  private workerClients: BrookClient[] = [];
  private workers: Worker<Job>[] = [];
  private readonly errors = new ClientErrors();

  constructor(
    private readonly root: string,
    private readonly serverBin: string,
    private readonly prefetch: number,
  ) {
    this.workerModel = `client.worker(concurrency ${prefetch}) per worker, pushed jobs, ack per job (batched per tick by the SDK)`;
  }

  async start(): Promise<void> {
    this.process = await BrookProcess.start(this.root, this.serverBin, 'queues-ws', 4);
    await this.process.http.expect('PUT', `/v1/queues/${QUEUE}`, [200], JSON.stringify({ max_depth: 10_000_000 }));
    this.producer = sdkClient(this.process.url, this.errors);
    await this.producer.connect();
  }

  async enqueue(jobs: readonly Job[]): Promise<void> {
    await this.producer!.enqueue(
      QUEUE,
      jobs.map((value) => ({ value })),
    );
  }

  async startWorkers(count: number, handler: JobHandler): Promise<void> {
    for (let w = 0; w < count; w++) {
      const client = sdkClient(this.process!.url, this.errors);
      await client.connect();
      this.workerClients.push(client);
      this.workers.push(client.worker<Job>(QUEUE, (job) => handler(job.value), { concurrency: this.prefetch }));
    }
  }

  async stopWorkers(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers.map((w) => w.stop()));
    if (this.errors.count > 0) throw new Error(`SDK errors: ${this.errors.seen.join('; ')}`);
  }

  async stop(): Promise<void> {
    await this.stopWorkers().catch(() => undefined);
    await Promise.all([...this.workerClients, ...(this.producer ? [this.producer] : [])].map((c) => c.close()));
    this.workerClients = [];
    this.producer = null;
    await this.process?.stop();
    this.process = null;
  }
}
