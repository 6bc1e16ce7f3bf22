/**
 * A token bucket: holds up to `capacity` tokens, refilled at `ratePerSecond`. A request for more
 * than `capacity` passes only when the bucket is full, and leaves it in debt (negative) until
 * refilled, so a large batch is never refused forever yet the long-run rate still holds.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    readonly ratePerSecond: number,
    readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
  }

  /** Milliseconds until `n` tokens can be taken (0: now). `now` is in ms, monotonic. */
  waitMs(n: number, now: number): number {
    this.refill(now);
    const need = Math.min(n, this.capacity);
    if (this.tokens >= need) return 0;
    return Math.ceil(((need - this.tokens) / this.ratePerSecond) * 1000);
  }

  /** Takes `n` tokens; call after `waitMs(n, now)` answered 0. */
  take(n: number, now: number): void {
    this.refill(now);
    this.tokens -= n;
  }

  private refill(now: number): void {
    const elapsed = now - this.updatedAt;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed / 1000) * this.ratePerSecond);
    this.updatedAt = now;
  }
}
