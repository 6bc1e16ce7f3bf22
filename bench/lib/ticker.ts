import { Worker } from 'node:worker_threads';

/** Milliseconds on the process-wide monotonic clock (process.hrtime), the same in every thread. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * The ticker's thread: sleeps (Atomics.wait, no spinning) until the next intended time, then posts
 * how many sequence numbers are due. Plain JavaScript, evaluated as a worker.
 */
const TICKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { t0, intervalMs, count, flag } = workerData;
const stop = new Int32Array(flag);
const now = () => Number(process.hrtime.bigint()) / 1e6;
let due = 0;
while (due < count && Atomics.load(stop, 0) === 0) {
  const wait = t0 + due * intervalMs - now();
  if (wait > 0) Atomics.wait(stop, 0, 0, wait);
  const t = now();
  while (due < count && t0 + due * intervalMs <= t) due++;
  parentPort.postMessage(due);
}
`;

/**
 * A fixed timeline, `t0 + seq × intervalMs` (nowMs() milliseconds), ticked by a worker thread that
 * sleeps until each intended time and tells the main thread which sequence numbers are due. The
 * main thread does the sends when the message arrives, so a busy main thread sends late (and
 * that lateness is part of what is measured), while the timeline itself neither drifts nor
 * spins a core, and has no 1 ms timer granularity.
 */
export class Ticker {
  readonly intervalMs: number;
  private worker: Worker | null = null;
  private readonly flag = new SharedArrayBuffer(4);

  constructor(
    readonly t0: number,
    rate: number,
    readonly count: number,
  ) {
    this.intervalMs = 1000 / rate;
  }

  intended(seq: number): number {
    return this.t0 + seq * this.intervalMs;
  }

  /**
   * Calls `send(seq)` for every sequence number in order once it is due; resolves after the last,
   * rejects (and stops) when `send` throws or `check` returns a reason to stop.
   */
  run(send: (seq: number) => void, check: () => string | null): Promise<void> {
    return new Promise((resolve, reject) => {
      let next = 0;
      const worker = new Worker(TICKER_SOURCE, {
        eval: true,
        workerData: { t0: this.t0, intervalMs: this.intervalMs, count: this.count, flag: this.flag },
      });
      this.worker = worker;
      const finish = (err: Error | null): void => {
        this.stop();
        if (err === null) resolve();
        else reject(err);
      };
      worker.on('message', (due: number) => {
        try {
          while (next < due) send(next++);
          if (next >= this.count) return finish(null);
          const reason = check();
          if (reason !== null) finish(new Error(`${reason} (after ${next} of ${this.count} sends)`));
        } catch (err) {
          finish(err instanceof Error ? err : new Error(String(err)));
        }
      });
      worker.on('error', (err) => finish(err));
      worker.on('exit', (code) => {
        if (next < this.count) finish(new Error(`the ticker thread exited (${code}) after ${next} of ${this.count} sends`));
      });
    });
  }

  stop(): void {
    const stop = new Int32Array(this.flag);
    Atomics.store(stop, 0, 1);
    Atomics.notify(stop, 0);
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) void worker.terminate();
  }
}
