/** Retry delays: exponential backoff with full jitter (a uniform pick in `[0, min(cap, base·2^attempt))`). */

export interface BackoffOptions {
  /** Delay bound of the first retry. */
  readonly baseMs: number;
  /** Largest delay bound, however many attempts failed. */
  readonly capMs: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry). Full jitter spreads clients
 * that failed together (a server restart) across the whole window instead of bunching them.
 */
export function fullJitter(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const bound = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * bound);
}
