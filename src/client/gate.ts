/**
 * A FIFO semaphore: at most `limit()` holders at once, and none while `canPass()` is false.
 * Waiters are the callers' own promises, so the queue is bounded by the callers; FIFO order is
 * what keeps batches of one producer in order on the wire.
 */
import { Fifo } from '../lib/fifo.js';

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export class Gate {
  private readonly waiters = new Fifo<Waiter>();
  private holders = 0;

  constructor(
    private readonly limit: () => number,
    private readonly canPass: () => boolean,
  ) {}

  get inside(): number {
    return this.holders;
  }

  /**
   * Passes at once when nobody waits and there is room (true; call `leave()` exactly once
   * afterwards), else false and nothing changed: the hot path needs no promise.
   */
  tryEnter(): boolean {
    if (this.waiters.length > 0 || !this.canPass() || this.holders >= Math.max(1, this.limit())) return false;
    this.holders++;
    return true;
  }

  /** Resolves when the caller may go; call `leave()` exactly once afterwards. */
  enter(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pump();
    });
  }

  leave(): void {
    this.holders--;
    this.pump();
  }

  /** Lets waiters through while there is room; call when `canPass()` may have become true. */
  pump(): void {
    if (!this.canPass()) return;
    const limit = Math.max(1, this.limit());
    while (this.holders < limit && this.waiters.length > 0) {
      this.holders++;
      this.waiters.shift()!.resolve();
    }
  }

  rejectAll(err: Error): void {
    for (let w = this.waiters.shift(); w !== undefined; w = this.waiters.shift()) w.reject(err);
  }
}
