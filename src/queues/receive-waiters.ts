/**
 * Receivers parked in a long poll on one queue, and who is woken first when messages become
 * ready (docs/queues.md, "Balance policies"). Bounded: past `maxWaiters` a new long poll is
 * refused (TOO_MANY_WAITERS) instead of parked.
 */
import type { BalanceMode } from './types.js';

/** A receiver parked in a long poll; `wake(share)` lets it take up to `share` messages (0: take what it asked for). */
interface Waiter {
  readonly worker: string;
  readonly wake: (share: number) => void;
}

export class ReceiveWaiters {
  private waiters: Waiter[] = [];
  /** Round-robin: where the next wake starts in the list of waiting receivers. */
  private turn = 0;
  private wakeScheduled = false;

  constructor(
    private readonly maxWaiters: number,
    private readonly refuse: () => Error,
  ) {}

  /** Resolves with the share the receiver may take when messages arrive, or 0 on timeout, abort or `wakeAll(0)`. */
  wait(ms: number, worker: string, signal?: AbortSignal): Promise<number> {
    if (this.waiters.length >= this.maxWaiters) throw this.refuse();
    return new Promise<number>((resolve) => {
      const waiter: Waiter = {
        worker,
        wake: (share) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', timedOut);
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          resolve(share);
        },
      };
      const timedOut = (): void => waiter.wake(0);
      const timer = setTimeout(timedOut, ms);
      signal?.addEventListener('abort', timedOut, { once: true });
      this.waiters.push(waiter);
    });
  }

  /**
   * Messages became ready: wakes the parked receivers (in a microtask, once per burst) in the
   * order `balance` says — `least-loaded`: fewest messages in flight first; otherwise
   * round-robin, starting one further along each time — each allowed an equal share of what is
   * ready. Their receives run in that order, so the order decides who gets what.
   */
  wake(balance: BalanceMode, readyCount: () => number, inFlightOf: (worker: string) => number): void {
    if (this.waiters.length === 0 || this.wakeScheduled) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      const parked = this.waiters.slice();
      if (parked.length === 0) return;
      let order: Waiter[];
      if (balance === 'least-loaded') {
        order = parked.sort((a, b) => inFlightOf(a.worker) - inFlightOf(b.worker));
      } else {
        const start = this.turn++ % parked.length;
        order = [...parked.slice(start), ...parked.slice(0, start)];
      }
      const share = Math.max(1, Math.ceil(readyCount() / parked.length));
      for (const w of order) w.wake(share);
    });
  }

  /** Wakes everyone with share 0 (the queue is closing). */
  wakeAll(): void {
    for (const w of this.waiters.slice()) w.wake(0);
  }
}
