/**
 * The queues suite (issue #4): N jobs enqueued, then processed by 4 concurrent workers that
 * acknowledge each; then pickup latency with idle workers. Brook (in-process and over HTTP),
 * BullMQ on the local Redis and RabbitMQ through amqplib, in the same run.
 */
import type { BenchOptions } from '../lib/args.js';
import type { Job, QueueSystem } from '../lib/queue-system.js';
import { sleep } from '../lib/processes.js';
import { beforeDeadline, Latency, runWindowed, type LatencySummary } from '../lib/workload.js';
import { BrookQueuesHttp, BrookQueuesInProcess, BrookQueuesWs } from '../brook/queues.js';
import { BrookQueuesJetStreamNative } from '../brook/queues-native.js';
import { BullMqSystem } from '../competitors/bullmq.js';
import { RabbitMqSystem } from '../competitors/rabbitmq.js';

export const QUEUE_WORKERS = 4;
/** Jobs a worker holds at once (RabbitMQ prefetch, BullMQ concurrency, Brook receive max). */
export const QUEUE_PREFETCH = 100;
/** Jobs per enqueue call, and enqueue calls in flight. */
const ENQUEUE_BATCH = 100;
const ENQUEUE_WINDOW = 8;
/** Pickup latency: jobs enqueued one at a time, this far apart, with the workers idle and waiting. */
const PICKUP_INTERVAL_MS = 2;
const PAD = 'x'.repeat(60);

export interface QueueRunResult {
  readonly system: string;
  readonly label: string;
  readonly durability: string;
  readonly workerModel: string;
  readonly jobs: number;
  readonly enqueue?: { readonly seconds: number; readonly jobsPerSec: number };
  readonly process?: { readonly seconds: number; readonly jobsPerSec: number; readonly duplicates: number; readonly missing: number };
  readonly pickup?: LatencySummary;
  readonly error?: string;
}

export interface QueuesResult {
  readonly jobs: number;
  readonly workers: number;
  readonly prefetch: number;
  readonly enqueueBatch: number;
  readonly enqueueWindow: number;
  readonly pickupJobs: number;
  readonly runs: readonly QueueRunResult[];
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function measure(system: QueueSystem, jobs: number, pickupJobs: number, timeoutMs: number): Promise<QueueRunResult> {
  // A function: a system learns its durability (e.g. the Redis persistence settings) at start.
  const base = (): Pick<QueueRunResult, 'system' | 'label' | 'durability' | 'workerModel' | 'jobs'> => ({
    system: system.name,
    label: system.label,
    durability: system.durability,
    workerModel: system.workerModel,
    jobs,
  });
  let enqueue: QueueRunResult['enqueue'];
  let processed: QueueRunResult['process'];
  try {
    await system.start();
    progress(`queues: ${system.label}: enqueue ${jobs} jobs`);
    const batches = Math.ceil(jobs / ENQUEUE_BATCH);
    let started = performance.now();
    await runWindowed(
      batches,
      ENQUEUE_WINDOW,
      async (b) => {
        const from = b * ENQUEUE_BATCH;
        const t = performance.now();
        const batch: Job[] = [];
        for (let i = from; i < Math.min(jobs, from + ENQUEUE_BATCH); i++) batch.push({ i, t, pad: PAD });
        await system.enqueue(batch);
      },
      { timeoutMs },
    );
    let seconds = (performance.now() - started) / 1000;
    enqueue = { seconds, jobsPerSec: jobs / seconds };

    progress(`queues: ${system.label}: process with ${QUEUE_WORKERS} workers`);
    const seen = new Uint8Array(jobs + pickupJobs);
    let count = 0;
    let duplicates = 0;
    let pickupPhase = false;
    const latency = new Latency();
    let done: () => void = () => undefined;
    const allDone = new Promise<void>((resolve) => (done = resolve));
    started = performance.now();
    await system.startWorkers(QUEUE_WORKERS, (job) => {
      if (seen[job.i] === 1) {
        duplicates++;
        return;
      }
      seen[job.i] = 1;
      if (pickupPhase) latency.recordMs(performance.now() - job.t);
      if (++count === jobs) done();
    });
    await beforeDeadline(allDone, performance.now() + timeoutMs, () => `processed ${count}/${jobs} jobs`);
    seconds = (performance.now() - started) / 1000;
    processed = { seconds, jobsPerSec: jobs / seconds, duplicates, missing: jobs - count };

    progress(`queues: ${system.label}: pickup latency over ${pickupJobs} jobs`);
    pickupPhase = true;
    await sleep(200); // the workers are idle and waiting
    const target = jobs + pickupJobs;
    const pickedUp = new Promise<void>((resolve) => (done = resolve));
    const check = setInterval(() => {
      if (count >= target) done();
    }, 5);
    for (let n = 0; n < pickupJobs; n++) {
      await system.enqueue([{ i: jobs + n, t: performance.now(), pad: PAD }]);
      await sleep(PICKUP_INTERVAL_MS);
    }
    try {
      await beforeDeadline(pickedUp, performance.now() + 30_000, () => `picked up ${count - jobs}/${pickupJobs} jobs`);
    } finally {
      clearInterval(check);
    }
    await system.stopWorkers();
    return { ...base(), enqueue, process: { ...processed, duplicates }, pickup: latency.summary() };
  } catch (err) {
    return {
      ...base(),
      ...(enqueue ? { enqueue } : {}),
      ...(processed ? { process: processed } : {}),
      error: errorText(err),
    };
  } finally {
    try {
      await system.stop();
    } catch (err) {
      progress(`queues: stopping ${system.label} failed: ${errorText(err)}`);
    }
  }
}

export async function runQueues(options: BenchOptions): Promise<QueuesResult> {
  const jobs = options.queueJobs;
  const pickupJobs = options.quick ? 300 : 1_000;
  const systems: QueueSystem[] = [
    new BrookQueuesInProcess(options.dir, QUEUE_PREFETCH),
    new BrookQueuesHttp(options.dir, options.serverBin, QUEUE_PREFETCH),
    new BrookQueuesWs(options.dir, options.serverBin, QUEUE_PREFETCH),
    new BrookQueuesJetStreamNative(QUEUE_PREFETCH),
    new BullMqSystem(QUEUE_PREFETCH),
    new RabbitMqSystem(QUEUE_PREFETCH),
  ];
  const runs: QueueRunResult[] = [];
  for (const system of systems) runs.push(await measure(system, jobs, pickupJobs, options.phaseTimeoutMs));
  return {
    jobs,
    workers: QUEUE_WORKERS,
    prefetch: QUEUE_PREFETCH,
    enqueueBatch: ENQUEUE_BATCH,
    enqueueWindow: ENQUEUE_WINDOW,
    pickupJobs,
    runs,
  };
}
