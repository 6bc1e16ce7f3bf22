import { HttpError } from '../errors.js';

/** Why a produce was throttled; also the `reason` label of `brook_throttled_total`. */
export type ThrottleReason = 'records' | 'bytes' | 'in_flight';

/** A produce over its quota or over the server's in-flight bound. HTTP: 429 with `Retry-After`. */
export class RateLimitedError extends HttpError {
  /** Whole seconds, at least 1 (what `Retry-After` carries). */
  readonly retryAfterSeconds: number;

  constructor(
    readonly reason: ThrottleReason,
    retryAfterMs: number,
  ) {
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    super(
      'RATE_LIMITED',
      reason === 'in_flight'
        ? `the server is busy with other produce requests; retry in ${seconds} s`
        : `produce quota exceeded (${reason} per second); retry in ${seconds} s`,
      { 'retry-after': String(seconds) },
    );
    this.retryAfterSeconds = seconds;
  }
}
