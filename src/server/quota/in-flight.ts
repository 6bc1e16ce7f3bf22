/**
 * A global bound on produce bytes held at once (bodies being read, parsed and appended). Past
 * it a produce is refused at once (429) instead of being buffered: memory stays flat when
 * producers outrun the disk.
 */
import { RateLimitedError, type ThrottleReason } from './errors.js';

/** Releases what `acquire` reserved; calling it again does nothing. */
export type Release = () => void;

export class InFlightBytes {
  private held = 0;

  constructor(
    /** Most bytes held at once. */
    readonly limit: number,
    private readonly onThrottled: (reason: ThrottleReason) => void = () => undefined,
  ) {}

  /** Bytes currently reserved. */
  get current(): number {
    return this.held;
  }

  /**
   * Reserves `bytes`, or returns null when that would pass the limit. A reservation larger than
   * the whole limit is granted only when nothing else is held, so it cannot starve forever.
   */
  tryAcquire(bytes: number): Release | null {
    if (this.held > 0 && this.held + bytes > this.limit) {
      this.onThrottled('in_flight');
      return null;
    }
    this.held += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
    };
  }

  /** `tryAcquire`, throwing RateLimitedError (Retry-After: 1) when over the limit. */
  acquire(bytes: number): Release {
    const release = this.tryAcquire(bytes);
    if (release === null) throw new RateLimitedError('in_flight', 1000);
    return release;
  }
}
