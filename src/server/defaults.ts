/** Every HTTP server default and bound in one place. */

/** Largest request body read; larger ones are refused with 413 before or while reading. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Most records accepted in one produce request. */
export const DEFAULT_MAX_BATCH_RECORDS = 10_000;
/** Longest a fetch may long-poll (`wait_ms` is capped to this). */
export const MAX_WAIT_MS = 30_000;
/** Most records one fetch returns (`max` is capped to this). */
export const MAX_READ_RECORDS = 10_000;
/** Largest `max_bytes` a fetch may ask for (capped to this). */
export const MAX_READ_BYTES = 16 * 1024 * 1024;
/** How long `close()` waits for in-flight requests before cutting their connections. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/**
 * After refusing an oversized body, bytes still read and discarded (never buffered) before the
 * connection is cut; lets the client read the 413 instead of seeing a reset.
 */
export const OVERSIZED_BODY_LINGER_BYTES = 1024 * 1024;
/** ...and for how long, at most, after the 413 was sent. */
export const OVERSIZED_BODY_LINGER_MS = 2_000;
