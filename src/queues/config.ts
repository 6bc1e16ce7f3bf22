import { InvalidArgumentError } from '../engine/index.js';
import { InvalidQueueNameError } from './errors.js';
import type { QueueConfig, QueueConfigInput } from './types.js';

/** Every queue default in one place (docs/queues.md, "Configuration"). */
export const DEFAULT_QUEUE_CONFIG: QueueConfig = {
  maxDeliveries: 5,
  backoff: { baseMs: 1_000, capMs: 60_000 },
  balance: 'round-robin',
  maxDepth: 1_000_000,
  maxBytes: 256 * 1024 * 1024,
  overflow: 'reject',
  dedupWindowMs: 300_000,
  maxInFlightPerWorker: 10_000,
  visibilityMs: 30_000,
  defaultTtlMs: null,
  maxDeadLetters: 100_000,
};

/** Most messages one receive hands out. */
export const MAX_RECEIVE = 1_000;
/** Longest lease: a worker that needs more extends. */
export const MAX_VISIBILITY_MS = 12 * 3_600_000;
/** Priorities are 0..MAX_PRIORITY, higher first. */
export const MAX_PRIORITY = 9;
/** Longest delay of an enqueue or a nack. */
export const MAX_DELAY_MS = 365 * 86_400_000;
/** Receivers parked in a long poll per queue; more are refused (TOO_MANY_WAITERS). */
export const MAX_WAITERS_PER_QUEUE = 10_000;
/** Dedup ids remembered per queue; past it the oldest is forgotten before its window ends. */
export const MAX_DEDUP_ENTRIES = 1_000_000;
export const MAX_DEDUP_ID_LENGTH = 128;
export const MAX_KEY_LENGTH = 256;
export const MAX_ERROR_LENGTH = 2_048;
/** Largest message payload. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** How often finished messages are truncated from the journal. */
export const DEFAULT_COMPACT_INTERVAL_MS = 5_000;
/** Journal records beyond which compaction carries old live messages forward (with 4 × live). */
export const DEFAULT_CARRY_FORWARD_AFTER = 10_000;

const QUEUE_NAME = /^[a-zA-Z0-9._-]{1,200}$/;

export function assertValidQueueName(name: string): void {
  if (!QUEUE_NAME.test(name) || name === '.' || name === '..' || name.startsWith('__')) throw new InvalidQueueNameError(name);
}

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new InvalidArgumentError(`${name} must be an integer in [1, ${max}], got ${value}`);
  }
}

/** Applies `input` over `base` and checks the result. */
export function resolveQueueConfig(input: QueueConfigInput, base: QueueConfig = DEFAULT_QUEUE_CONFIG): QueueConfig {
  const config: QueueConfig = {
    maxDeliveries: input.maxDeliveries ?? base.maxDeliveries,
    backoff: { baseMs: input.backoff?.baseMs ?? base.backoff.baseMs, capMs: input.backoff?.capMs ?? base.backoff.capMs },
    balance: input.balance ?? base.balance,
    maxDepth: input.maxDepth ?? base.maxDepth,
    maxBytes: input.maxBytes ?? base.maxBytes,
    overflow: input.overflow ?? base.overflow,
    dedupWindowMs: input.dedupWindowMs ?? base.dedupWindowMs,
    maxInFlightPerWorker: input.maxInFlightPerWorker ?? base.maxInFlightPerWorker,
    visibilityMs: input.visibilityMs ?? base.visibilityMs,
    defaultTtlMs: input.defaultTtlMs === undefined ? base.defaultTtlMs : input.defaultTtlMs,
    maxDeadLetters: input.maxDeadLetters ?? base.maxDeadLetters,
  };
  positiveInt('max_deliveries', config.maxDeliveries, 1_000);
  positiveInt('backoff.base_ms', config.backoff.baseMs, MAX_DELAY_MS);
  positiveInt('backoff.cap_ms', config.backoff.capMs, MAX_DELAY_MS);
  if (config.backoff.capMs < config.backoff.baseMs) throw new InvalidArgumentError('backoff.cap_ms must be at least backoff.base_ms');
  positiveInt('max_depth', config.maxDepth, 100_000_000);
  positiveInt('max_bytes', config.maxBytes, 64 * 1024 * 1024 * 1024);
  if (config.maxBytes < MAX_MESSAGE_BYTES) throw new InvalidArgumentError(`max_bytes must be at least ${MAX_MESSAGE_BYTES} (one largest message)`);
  positiveInt('dedup_window_ms', config.dedupWindowMs, 7 * 86_400_000);
  positiveInt('max_in_flight_per_worker', config.maxInFlightPerWorker, 1_000_000);
  positiveInt('visibility_ms', config.visibilityMs, MAX_VISIBILITY_MS);
  if (config.defaultTtlMs !== null) positiveInt('default_ttl_ms', config.defaultTtlMs, MAX_DELAY_MS);
  positiveInt('max_dead_letters', config.maxDeadLetters, 10_000_000);
  if (!['round-robin', 'least-loaded', 'key-sticky'].includes(config.balance)) {
    throw new InvalidArgumentError(`balance must be round-robin, least-loaded or key-sticky`);
  }
  if (!['reject', 'drop_oldest'].includes(config.overflow)) throw new InvalidArgumentError('overflow must be reject or drop_oldest');
  return config;
}
