import type { QueueService } from '../../src/queues/index.js';
import type { Job, JobHandler } from '../lib/queue-system.js';

/** How long a worker's receive long-polls before it checks whether it should stop. */
const WAIT_MS = 500;

/**
 * Bench workers calling a QueueService in the bench process (the engine-backed QueueManager or
 * the JetStream-native service): each leases up to `prefetch` jobs per `receive` and acks every
 * job with its own `ack` call, until stopped.
 */
export class ServiceWorkers {
  private workers: Promise<void>[] = [];
  private stopping: AbortController | null = null;

  constructor(
    private readonly queue: string,
    private readonly prefetch: number,
  ) {}

  /** Starts `count` workers; worker `w` uses `serviceFor(w)`. */
  start(count: number, handler: JobHandler, serviceFor: (worker: number) => QueueService): void {
    const stopping = (this.stopping = new AbortController());
    const work = async (service: QueueService, worker: string): Promise<void> => {
      while (!stopping.signal.aborted) {
        const got = await service.receive(this.queue, { max: this.prefetch, worker }, WAIT_MS, stopping.signal);
        const acks: Promise<void>[] = new Array<Promise<void>>(got.length);
        for (let i = 0; i < got.length; i++) {
          const d = got[i]!;
          handler(JSON.parse(Buffer.from(d.value).toString('utf8')) as Job);
          acks[i] = service.ack(this.queue, [d.receipt]);
        }
        await Promise.all(acks);
      }
    };
    this.workers = Array.from({ length: count }, (_, w) => work(serviceFor(w), `w${w}`));
  }

  async stop(): Promise<void> {
    this.stopping?.abort();
    const workers = this.workers;
    this.workers = [];
    await Promise.all(workers);
  }
}
