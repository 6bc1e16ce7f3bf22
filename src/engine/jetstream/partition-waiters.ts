import type { NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { TooManyWaitersError } from '../errors.js';
import type { WaitOptions } from '../types.js';

interface Waiter {
  readonly offset: number;
  readonly finish: (ready: boolean) => void;
}

interface Watch {
  readonly stream: string;
  readonly sub: Subscription;
  /** Resolves once the server has registered the subscription. */
  readonly ready: Promise<void>;
  readonly waiters: Set<Waiter>;
  checking: boolean;
  again: boolean;
  /** A message arrived since the last check started. */
  messageSeen: boolean;
  /** High watermark seen by the last check, to tell a lagging store from a waiter further ahead. */
  lastHw: number;
  retry: NodeJS.Timeout | undefined;
  retries: number;
}

/** Re-checks after a message whose record is not yet visible in the stream state (ms). */
const STORE_LAG_RETRIES_MS = [2, 10, 50, 250];

/**
 * `waitForData` without polling: one core NATS subscription per partition with waiters, on the
 * partition's subject. A message on it wakes the waiters; they are resolved only once the stream
 * state shows the record stored (a core subscriber can see a message a moment before JetStream
 * has stored it, or see one JetStream refused), so `true` always means readable.
 *
 * Bounded: at most `maxWaitersPerPartition` waiters per partition; a subscription lives only
 * while its partition has waiters.
 */
export class PartitionWaiters {
  private readonly watches = new Map<string, Watch>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly logger: Logger,
    private readonly maxWaitersPerPartition: number,
    /** The stream's high watermark, fresh from the server. */
    private readonly highWatermark: (stream: string) => Promise<number>,
  ) {}

  async wait(stream: string, subject: string, offset: number, options: WaitOptions): Promise<boolean> {
    if (offset < (await this.highWatermark(stream))) return true;
    if (options.timeoutMs <= 0 || options.signal?.aborted) return false;
    const watch = this.watch(stream, subject);
    if (watch.waiters.size >= this.maxWaitersPerPartition) throw new TooManyWaitersError(this.maxWaitersPerPartition);
    return new Promise<boolean>((resolve) => {
      const signal = options.signal;
      const finish = (ready: boolean): void => {
        if (!watch.waiters.delete(waiter)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (watch.waiters.size === 0) this.unwatch(watch);
        resolve(ready);
      };
      const waiter: Waiter = { offset, finish };
      const onAbort = (): void => finish(false);
      const timer = setTimeout(() => finish(false), options.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      watch.waiters.add(waiter);
      // A record appended between the first check and the subscription becoming active is seen here.
      watch.ready.then(
        () => this.check(watch),
        () => finish(false),
      );
    });
  }

  /** Resolves the waiters of a deleted partition with false. */
  cancel(stream: string): void {
    const watch = this.watches.get(stream);
    if (watch) for (const w of [...watch.waiters]) w.finish(false);
  }

  close(): void {
    for (const stream of [...this.watches.keys()]) this.cancel(stream);
  }

  private watch(stream: string, subject: string): Watch {
    let watch = this.watches.get(stream);
    if (watch) return watch;
    const sub = this.nc.subscribe(subject, { callback: () => this.onMessage(stream) });
    watch = {
      stream,
      sub,
      ready: this.nc.flush(),
      waiters: new Set(),
      checking: false,
      again: false,
      messageSeen: false,
      lastHw: -1,
      retry: undefined,
      retries: 0,
    };
    watch.ready.catch((err: unknown) => this.logger.warn({ err, stream }, 'could not subscribe for waitForData'));
    this.watches.set(stream, watch);
    return watch;
  }

  private unwatch(watch: Watch): void {
    if (this.watches.get(watch.stream) !== watch) return;
    this.watches.delete(watch.stream);
    clearTimeout(watch.retry);
    watch.sub.unsubscribe();
  }

  private onMessage(stream: string): void {
    const watch = this.watches.get(stream);
    if (!watch) return;
    watch.retries = 0;
    watch.messageSeen = true;
    this.check(watch);
  }

  /** Coalesced: at most one stream-state request per partition at a time. */
  private check(watch: Watch): void {
    if (watch.checking) {
      watch.again = true;
      return;
    }
    watch.checking = true;
    const triggered = watch.messageSeen;
    watch.messageSeen = false;
    clearTimeout(watch.retry);
    watch.retry = undefined;
    this.highWatermark(watch.stream).then(
      (hw) => {
        for (const w of [...watch.waiters]) if (w.offset < hw) w.finish(true);
        const progressed = hw > watch.lastHw;
        watch.lastHw = Math.max(watch.lastHw, hw);
        this.afterCheck(watch, triggered && !progressed);
      },
      (err: unknown) => {
        this.logger.warn({ err, stream: watch.stream }, 'waitForData could not read the stream state');
        this.afterCheck(watch, triggered);
      },
    );
  }

  private afterCheck(watch: Watch, lagging: boolean): void {
    watch.checking = false;
    if (watch.waiters.size === 0) return;
    if (watch.again) {
      watch.again = false;
      this.check(watch);
      return;
    }
    // A message arrived but the stream state did not move: the store may lag behind the
    // subscription (or JetStream refused the message). Look again a few times, then wait.
    const delay = lagging ? STORE_LAG_RETRIES_MS[watch.retries] : undefined;
    if (delay !== undefined) {
      watch.retries++;
      watch.retry = setTimeout(() => {
        watch.messageSeen = true;
        this.check(watch);
      }, delay);
      watch.retry.unref();
    }
  }
}
