/** What the queues suite measures, implemented once per system (Brook in-process, Brook over HTTP, BullMQ, RabbitMQ). */

/** One job: its index (to check each is processed exactly once) and its enqueue time (pickup latency). */
export interface Job {
  readonly i: number;
  /** performance.now() of the bench process when the enqueue call started. */
  readonly t: number;
  readonly pad: string;
}

/** Called once per job a worker takes, before it acknowledges it. */
export type JobHandler = (job: Job) => void;

export interface QueueSystem {
  readonly name: string;
  readonly label: string;
  /** What is durable when an enqueue is acknowledged, and how acks are kept. */
  readonly durability: string;
  /** How the workers take and acknowledge jobs. */
  readonly workerModel: string;
  start(): Promise<void>;
  /** Enqueues one batch; resolves once the system acknowledged every job of it. */
  enqueue(jobs: readonly Job[]): Promise<void>;
  /** Starts `count` concurrent workers, each acknowledging every job after `handler` ran. */
  startWorkers(count: number, handler: JobHandler): Promise<void>;
  stopWorkers(): Promise<void>;
  /** Releases everything, deleting the queue (idempotent; called after failures too). */
  stop(): Promise<void>;
}
