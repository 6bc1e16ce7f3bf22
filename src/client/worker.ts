/**
 * A queue worker pool (`BrookClient.worker`): the server pushes up to `concurrency` jobs at once
 * (a `work` subscription with credits), each runs the handler, and the pool settles it —
 * resolving acknowledges, throwing releases it for a retry with the queue's backoff (or
 * `retryDelayMs`). Leases of running jobs are extended while they run. Supervised: a handler that
 * throws, synchronously or not, fails its job and nothing else.
 *
 * ```
 *  server ──jobs──▶ run handler ──ok──▶ ack ┐
 *     ▲                 │                    ├─▶ credit +1 ──▶ server pushes the next
 *     │                 └──throw──▶ nack ────┘
 *     └─ extend (every extendEveryMs, all running jobs, one frame)
 * ```
 *
 * Acks, nacks and credits of one tick go out together: one `ack` frame and one `credit` frame
 * for every job that finished in that tick.
 */
import type { Connection } from './connection.js';
import { DEFAULT_WORKER_CONCURRENCY, DEFAULT_WORKER_VISIBILITY_MS, MAX_WORKER_CONCURRENCY } from './defaults.js';
import { BrookClientError, InvalidArgumentError } from './errors.js';
import type { Job, JobHandler, WorkerOptions } from './options.js';
import type { JobsFrame } from './wire.js';

interface Running {
  readonly job: Job<unknown>;
}

export class Worker<T = unknown> {
  readonly queue: string;
  private readonly sub: string;
  private readonly concurrency: number;
  private readonly visibilityMs: number;
  private readonly extendEveryMs: number;
  private readonly running = new Map<string, Running>();
  private readonly detach: (() => void)[] = [];
  private acks: string[] = [];
  private credit = 0;
  private flushScheduled = false;
  private extendTimer: ReturnType<typeof setInterval> | undefined;
  private stopping: Promise<void> | null = null;
  private idle: (() => void) | null = null;
  /** Settle requests not yet answered: stop() waits for them. */
  private readonly settling = new Set<Promise<void>>();
  private processedCount = 0;
  private failedCount = 0;

  constructor(
    private readonly conn: Connection,
    queue: string,
    private readonly handler: JobHandler<T>,
    private readonly options: WorkerOptions<T>,
    sub: string,
    private readonly onClosed: (w: Worker<T>) => void,
  ) {
    if (typeof queue !== 'string' || queue.length === 0) throw new InvalidArgumentError('worker needs a queue name');
    if (typeof handler !== 'function') throw new InvalidArgumentError('worker needs a handler function');
    const concurrency = options.concurrency ?? DEFAULT_WORKER_CONCURRENCY;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_WORKER_CONCURRENCY) {
      throw new InvalidArgumentError(`concurrency must be an integer in [1, ${MAX_WORKER_CONCURRENCY}], got ${concurrency}`);
    }
    const visibilityMs = options.visibilityMs ?? DEFAULT_WORKER_VISIBILITY_MS;
    if (!Number.isSafeInteger(visibilityMs) || visibilityMs < 1) throw new InvalidArgumentError(`visibilityMs must be a positive integer`);
    const extendEveryMs = options.extendEveryMs ?? Math.max(1, Math.floor(visibilityMs / 3));
    if (!Number.isSafeInteger(extendEveryMs) || extendEveryMs < 1 || extendEveryMs >= visibilityMs) {
      throw new InvalidArgumentError('extendEveryMs must be a positive integer below visibilityMs');
    }
    this.queue = queue;
    this.sub = sub;
    this.concurrency = concurrency;
    this.visibilityMs = visibilityMs;
    this.extendEveryMs = extendEveryMs;
    this.detach.push(
      conn.routeJobs(sub, {
        jobs: (frame) => this.onJobs(frame),
        failed: (err) => this.conn.report(err),
      }),
    );
    this.detach.push(conn.onOpen(() => this.establish()));
    if (conn.isOpen) this.establish();
    else conn.ready().catch((err: unknown) => this.report(err));
  }

  /** Jobs running now. */
  get active(): number {
    return this.running.size;
  }

  /** Jobs whose handler resolved (acknowledged) and threw (released), since the worker started. */
  get stats(): { readonly processed: number; readonly failed: number; readonly active: number } {
    return { processed: this.processedCount, failed: this.failedCount, active: this.running.size };
  }

  /**
   * Stops taking jobs, waits for the running ones to finish and be settled, then detaches.
   * Jobs pushed after the stop are released at once. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.conn.isOpen) {
        try {
          await this.conn.request({ type: 'stop_work', sub: this.sub }, 'work_stopped');
        } catch (err) {
          this.report(err); // the connection's end stops the subscription anyway
        }
      }
      if (this.running.size > 0) await new Promise<void>((resolve) => (this.idle = resolve));
      await this.flush();
      while (this.settling.size > 0) await Promise.all([...this.settling]);
      clearInterval(this.extendTimer);
      for (const d of this.detach.splice(0)) d();
      this.onClosed(this);
    })();
    return this.stopping;
  }

  private establish(): void {
    if (this.stopping) return;
    // Jobs still running from before a reconnect count against the concurrency; their credit comes back as they finish.
    const credits = Math.max(0, this.concurrency - this.running.size);
    this.conn
      .request({ type: 'work', sub: this.sub, queue: this.queue, credits, visibility_ms: this.visibilityMs }, 'working')
      .catch((err: unknown) => {
        if (err instanceof BrookClientError && err.code === 'CONNECTION_LOST') return; // the next welcome retries
        this.report(err);
      });
  }

  private onJobs(frame: JobsFrame): void {
    for (const wire of frame.jobs) {
      const job: Job<T> = { ...wire, value: wire.value as T };
      if (this.stopping) {
        // Stopped meanwhile: hand it back for another worker now, not after its lease.
        void this.settle('nack', [job.receipt], { delay_ms: 0 });
        continue;
      }
      this.run(job);
    }
  }

  private run(job: Job<T>): void {
    this.running.set(job.receipt, { job });
    this.armExtend();
    let outcome: Promise<unknown>;
    try {
      outcome = Promise.resolve(this.handler(job));
    } catch (err) {
      outcome = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    outcome.then(
      () => this.finished(job, null),
      (err: unknown) => this.finished(job, err ?? new Error('job failed')),
    );
  }

  private finished(job: Job<T>, error: unknown): void {
    this.running.delete(job.receipt);
    this.credit++;
    if (error === null) {
      this.processedCount++;
      this.acks.push(job.receipt);
    } else {
      this.failedCount++;
      let delay: number | undefined;
      try {
        delay = this.options.retryDelayMs?.(error, job);
      } catch (err) {
        this.report(err); // a throwing retry policy falls back to the queue's backoff
      }
      const message = error instanceof Error ? error.message : String(error);
      void this.settle('nack', [job.receipt], { error: message.slice(0, 2_000), ...(delay === undefined ? {} : { delay_ms: Math.max(0, Math.floor(delay)) }) });
    }
    this.scheduleFlush();
    if (this.running.size === 0) {
      clearInterval(this.extendTimer);
      this.extendTimer = undefined;
      this.idle?.();
      this.idle = null;
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => void this.flush());
  }

  /** Sends the acks and the credit gathered since the last flush. */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const acks = this.acks;
    this.acks = [];
    const credit = this.credit;
    this.credit = 0;
    if (credit > 0 && !this.stopping) this.conn.sendFrame({ type: 'credit', sub: this.sub, records: credit, bytes: 0 });
    for (let i = 0; i < acks.length; i += 1_000) await this.settle('ack', acks.slice(i, i + 1_000), {});
  }

  private settle(type: 'ack' | 'nack' | 'extend', receipts: readonly string[], extra: { delay_ms?: number; error?: string; visibility_ms?: number }): Promise<void> {
    const settled = this.send(type, receipts, extra).finally(() => this.settling.delete(settled));
    this.settling.add(settled);
    return settled;
  }

  private async send(type: 'ack' | 'nack' | 'extend', receipts: readonly string[], extra: { delay_ms?: number; error?: string; visibility_ms?: number }): Promise<void> {
    try {
      await this.conn.request({ type, queue: this.queue, receipts, ...extra }, 'settled');
    } catch (err) {
      // An extend racing the job's own ack is refused harmlessly. Otherwise: after a reconnect the
      // server released this connection's leases, and the job runs again elsewhere.
      if (type === 'extend' && err instanceof BrookClientError && err.code === 'UNKNOWN_RECEIPT') return;
      this.report(err);
    }
  }

  private armExtend(): void {
    if (this.extendTimer !== undefined) return;
    this.extendTimer = setInterval(() => {
      const receipts = [...this.running.keys()];
      for (let i = 0; i < receipts.length; i += 1_000) {
        void this.settle('extend', receipts.slice(i, i + 1_000), { visibility_ms: this.visibilityMs });
      }
    }, this.extendEveryMs);
  }

  private report(err: unknown): void {
    if (err instanceof BrookClientError && err.code === 'CLIENT_CLOSED') return; // closing is what the caller asked for
    this.conn.report(err instanceof Error ? err : new Error(String(err)));
  }
}
