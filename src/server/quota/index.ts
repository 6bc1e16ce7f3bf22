/**
 * Produce flow control shared by the HTTP and WebSocket transports: per-principal token-bucket
 * quotas by tier, and a global bound on produce bytes in flight.
 */
export { quotaConfigFromFile, quotasFileSchema, type QuotasFile } from './config.js';
export { RateLimitedError, type ThrottleReason } from './errors.js';
export { InFlightBytes, type Release } from './in-flight.js';
export { ProduceQuotas, quotaKey, type QuotaConfig, type Throttle, type TierLimits } from './produce-quotas.js';
export { recordBytes } from '../../engine/record-size.js';
export { TokenBucket } from './token-bucket.js';
