/** Every SDK default in one place; the option types in ./options.ts point here. */

export const DEFAULT_RECONNECT_BASE_MS = 100;
export const DEFAULT_RECONNECT_CAP_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_PENDING_REQUESTS = 1024;
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/** brook.v1.bin: values cross the wire as bytes, with no JSON work on the server. */
export const DEFAULT_PROTOCOL = 'binary';

export const DEFAULT_LINGER_MS = 5;
export const DEFAULT_BATCH_SIZE = 500;
/** Unacknowledged batches per producer. */
export const DEFAULT_MAX_INFLIGHT = 5;
/**
 * The most an idempotent producer may set: the server remembers the last 8 batches of each
 * (PRODUCER_BATCH_MEMORY in the engine; `welcome.limits.producer_batches`), so more in flight
 * could not all be recognised as retries. Against a server that remembers fewer (older ones: 5)
 * the producer keeps to its number.
 */
export const MAX_IDEMPOTENT_INFLIGHT = 8;
export const DEFAULT_PRODUCE_RETRIES = 10;
export const DEFAULT_RETRY_BASE_MS = 100;
export const DEFAULT_RETRY_CAP_MS = 5_000;

export const DEFAULT_CREDIT_RECORDS = 1000;
export const DEFAULT_CREDIT_BYTES = 1024 * 1024;
/**
 * A consumer waiting on an empty buffer returns the credit it holds back after this long (it
 * otherwise returns used credit in halves of the window, not once per pushed frame).
 */
export const IDLE_CREDIT_RETURN_MS = 20;
export const DEFAULT_AUTO_COMMIT_INTERVAL_MS = 5_000;

/**
 * Used until the server's `welcome` says otherwise (and when it says nothing sensible): the
 * server's own defaults at the time of writing.
 */
export const FALLBACK_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Room in a produce frame for everything but the records (type, id, topic, producer; a stored batch's 56-byte header and producer id). */
export const PRODUCE_FRAME_OVERHEAD_BYTES = 1024;

export const DEFAULT_WORKER_CONCURRENCY = 10;
export const MAX_WORKER_CONCURRENCY = 1_000;
export const DEFAULT_WORKER_VISIBILITY_MS = 30_000;
