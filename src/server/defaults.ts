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
/** Bytes all reads together may hold at once (fetches and pushes, both transports). */
export const DEFAULT_MAX_IN_FLIGHT_READ_BYTES = 64 * 1024 * 1024;
/** How long `close()` waits for in-flight requests before cutting their connections. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
/**
 * After refusing an oversized body, bytes still read and discarded (never buffered) before the
 * connection is cut; lets the client read the 413 instead of seeing a reset.
 */
export const OVERSIZED_BODY_LINGER_BYTES = 1024 * 1024;
/** ...and for how long, at most, after the 413 was sent. */
export const OVERSIZED_BODY_LINGER_MS = 2_000;

// ── access control ────────────────────────────────────────────────────────────────────────────

/** Shortest accepted HS256 secret: RFC 7518 §3.2 wants a key at least as long as the hash. */
export const MIN_AUTH_SECRET_BYTES = 32;
/** Longest accepted token; a longer credential is refused before any parsing. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** Leeway for `exp` and `nbf`, in seconds, for clocks that drift apart a little. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
/** How long one fetch of a remote JWKS may take before tokens needing it are answered 503. */
export const JWKS_FETCH_TIMEOUT_MS = 5_000;
/** Most permission entries one token may carry. */
export const MAX_TOKEN_PERMISSIONS = 256;

// ── produce flow control ──────────────────────────────────────────────────────────────────────

/**
 * Produce request bytes held at once across all clients; above it a produce answers 429 before
 * its body is read. A body without Content-Length counts as `maxBodyBytes`.
 */
export const DEFAULT_MAX_IN_FLIGHT_PRODUCE_BYTES = 64 * 1024 * 1024;
/** Quota buckets kept (least recently used are dropped, which refills them). */
export const DEFAULT_MAX_QUOTA_BUCKETS = 100_000;
/** Tier of principals whose token names none (or one that is not configured). */
export const DEFAULT_QUOTA_TIER = 'regular';

// ── metrics ───────────────────────────────────────────────────────────────────────────────────

/** Distinct topic label values per metric; further topics share the label `~other`. */
export const MAX_TOPIC_LABELS = 1_000;
/** Most `brook_consumer_group_lag` series computed per scrape. */
export const MAX_LAG_SERIES = 10_000;

// ── WebSocket (/v1/ws, docs/protocol.md) ──────────────────────────────────────────────────────

/** The path WebSocket upgrades are accepted on. */
export const WS_PATH = '/v1/ws';
/** Largest inbound frame; a larger one closes the connection with 1009. Matches the HTTP body bound. */
export const DEFAULT_WS_MAX_FRAME_BYTES = 8 * 1024 * 1024;
/** Open WebSocket connections; one more is accepted and closed with 4008. */
export const DEFAULT_WS_MAX_CONNECTIONS = 10_000;
/** Ping interval; a peer silent for 3 intervals is closed with 4001. */
export const DEFAULT_WS_HEARTBEAT_MS = 30_000;
/** Unacknowledged produce frames per connection; more are refused with RATE_LIMITED. */
export const DEFAULT_WS_MAX_INFLIGHT_PRODUCE = 32;
/** Unanswered requests of other types per connection (fetch, subscribe, join, ...). */
export const DEFAULT_WS_MAX_INFLIGHT_REQUESTS = 64;
/** Subscriptions per connection (consumer-group partitions are not counted). */
export const DEFAULT_WS_MAX_SUBSCRIPTIONS = 1_000;
/** Pushing to a connection pauses while its send buffer holds more than this. */
export const DEFAULT_WS_MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
