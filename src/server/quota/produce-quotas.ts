/**
 * Per-principal produce quotas: two token buckets (records/s and bytes/s) per quota key, with
 * rates set by the principal's tier. Shared by HTTP (429 + Retry-After) and the WebSocket
 * transport (`slow_down` frames): both call `tryTake` with what they are about to append.
 *
 * Quota keys: `tenant:<tenant>` when the token names a tenant (its principals share one quota),
 * else `sub:<subject>`, else `ip:<address>` (auth off, or a token without `sub`).
 */
import type { Principal } from '../auth/index.js';
import { DEFAULT_MAX_QUOTA_BUCKETS, DEFAULT_QUOTA_TIER } from '../defaults.js';
import { RateLimitedError, type ThrottleReason } from './errors.js';
import { TokenBucket } from './token-bucket.js';

export interface TierLimits {
  /** Sustained records per second; absent means no record limit. */
  readonly recordsPerSecond?: number;
  /** Sustained record bytes (key + value + headers) per second; absent means no byte limit. */
  readonly bytesPerSecond?: number;
  /** Records that may be sent at once after a pause. @defaultValue recordsPerSecond */
  readonly burstRecords?: number;
  /** Bytes that may be sent at once after a pause. @defaultValue bytesPerSecond */
  readonly burstBytes?: number;
}

export interface QuotaConfig {
  /**
   * Limits per tier, chosen by the token's `tier` claim. Without tiers there are no
   * per-principal limits (the in-flight bound still applies).
   */
  readonly tiers?: Readonly<Record<string, TierLimits>>;
  /** Tier of principals without a (configured) `tier` claim, and of anonymous callers. @defaultValue 'regular' */
  readonly defaultTier?: string;
  /** Buckets kept; the least recently used are forgotten (which refills them). @defaultValue 100_000 */
  readonly maxBuckets?: number;
  /** Monotonic clock in ms. @defaultValue performance.now */
  readonly now?: () => number;
}

/** A refusal: why, and how long until the same request would pass. */
export interface Throttle {
  readonly reason: ThrottleReason;
  readonly retryAfterMs: number;
}

interface Buckets {
  readonly records: TokenBucket | null;
  readonly bytes: TokenBucket | null;
}

export class ProduceQuotas {
  private readonly tiers: ReadonlyMap<string, TierLimits>;
  private readonly defaultTier: string;
  private readonly maxBuckets: number;
  private readonly now: () => number;
  /** Insertion order is recency order: a hit is moved to the end, the front is evicted. */
  private readonly buckets = new Map<string, Buckets>();

  constructor(
    config: QuotaConfig = {},
    private readonly onThrottled: (reason: ThrottleReason) => void = () => undefined,
  ) {
    this.tiers = new Map(Object.entries(config.tiers ?? {}));
    this.defaultTier = config.defaultTier ?? DEFAULT_QUOTA_TIER;
    this.maxBuckets = config.maxBuckets ?? DEFAULT_MAX_QUOTA_BUCKETS;
    this.now = config.now ?? (() => performance.now());
    if (this.tiers.size > 0 && !this.tiers.has(this.defaultTier)) {
      throw new Error(`quota default tier "${this.defaultTier}" is not among the configured tiers`);
    }
    for (const [name, limits] of this.tiers) {
      for (const [field, value] of Object.entries(limits)) {
        if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
          throw new Error(`quota tier "${name}": ${field} must be a positive number`);
        }
      }
    }
  }

  /** True when some tier limits something; false means every call passes. */
  get enabled(): boolean {
    return this.tiers.size > 0;
  }

  /** Number of buckets held (bounded by `maxBuckets`). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Whether a produce of `records` records totalling `bytes` may go ahead now; if so, it is
   * counted. Returns null to go ahead, or the throttle to report.
   */
  tryTake(principal: Principal, address: string | undefined, records: number, bytes: number): Throttle | null {
    const entry = this.entry(principal, address);
    if (entry === null) return null;
    const now = this.now();
    const throttle = this.wait(entry, records, bytes, now);
    if (throttle) return throttle;
    entry.records?.take(records, now);
    entry.bytes?.take(bytes, now);
    return null;
  }

  /** `tryTake`, throwing RateLimitedError instead of returning a throttle. */
  take(principal: Principal, address: string | undefined, records: number, bytes: number): void {
    const throttle = this.tryTake(principal, address, records, bytes);
    if (throttle) throw new RateLimitedError(throttle.reason, throttle.retryAfterMs);
  }

  /**
   * Throws RateLimitedError when the caller's quota is already used up, before anything is
   * read: a throttled client's body is not buffered. Takes nothing.
   */
  assertNotExhausted(principal: Principal, address: string | undefined): void {
    const entry = this.entry(principal, address);
    if (entry === null) return;
    const throttle = this.wait(entry, 1, 1, this.now());
    if (throttle) throw new RateLimitedError(throttle.reason, throttle.retryAfterMs);
  }

  private wait(entry: Buckets, records: number, bytes: number, now: number): Throttle | null {
    const recordsMs = entry.records?.waitMs(records, now) ?? 0;
    const bytesMs = entry.bytes?.waitMs(bytes, now) ?? 0;
    if (recordsMs === 0 && bytesMs === 0) return null;
    const throttle: Throttle =
      recordsMs >= bytesMs ? { reason: 'records', retryAfterMs: recordsMs } : { reason: 'bytes', retryAfterMs: bytesMs };
    this.onThrottled(throttle.reason);
    return throttle;
  }

  private entry(principal: Principal, address: string | undefined): Buckets | null {
    if (this.tiers.size === 0) return null;
    const tier = principal.tier !== undefined && this.tiers.has(principal.tier) ? principal.tier : this.defaultTier;
    const limits = this.tiers.get(tier) ?? {};
    if (limits.recordsPerSecond === undefined && limits.bytesPerSecond === undefined) return null;
    // Per tier too: a tenant holding tokens of two tiers cannot reset its bucket by alternating.
    const key = `${tier}/${quotaKey(principal, address)}`;
    let entry = this.buckets.get(key);
    if (entry !== undefined) {
      this.buckets.delete(key);
    } else {
      const now = this.now();
      entry = {
        records: bucket(limits.recordsPerSecond, limits.burstRecords, now),
        bytes: bucket(limits.bytesPerSecond, limits.burstBytes, now),
      };
    }
    this.buckets.set(key, entry);
    if (this.buckets.size > this.maxBuckets) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    return entry;
  }
}

function bucket(rate: number | undefined, burst: number | undefined, now: number): TokenBucket | null {
  return rate === undefined ? null : new TokenBucket(rate, burst ?? rate, now);
}

/** The key a principal's produce quota is counted under (see the module comment). */
export function quotaKey(principal: Principal, address: string | undefined): string {
  if (principal.tenant !== undefined) return `tenant:${principal.tenant}`;
  if (!principal.anonymous && principal.subject !== '') return `sub:${principal.subject}`;
  return `ip:${address ?? 'unknown'}`;
}
