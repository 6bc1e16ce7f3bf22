import type { BackoffConfig } from './types.js';

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the wait after the n-th failed delivery is uniform in [0, min(cap, base·2^(n−1))).
 * Full jitter spreads a burst of failures over the whole window, so retries do not arrive in
 * synchronized waves. `random` is injectable so tests can check the distribution.
 */
export function fullJitterDelay(config: BackoffConfig, deliveries: number, random: () => number): number {
  const exponent = Math.min(Math.max(deliveries - 1, 0), 52);
  const ceiling = Math.min(config.capMs, config.baseMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}
