/** Broker defaults and internal bounds in one place. Connection-level limits are the server's (src/server/defaults.ts). */

/** Most records one pushed `records` frame carries. */
export const PUSH_MAX_RECORDS = 1_000;
/** Read size bound (engine bytes) for one pushed frame; also caps a frame's byte size roughly. */
export const PUSH_MAX_BYTES = 1024 * 1024;
/** Most a subscription out of credit reads ahead of it (src/broker/subscription.ts). */
export const READ_AHEAD_BYTES = PUSH_MAX_BYTES;
/** Records read ahead are dropped (and their read budget freed) when no credit comes for this long. */
export const READ_AHEAD_HOLD_MS = 1_000;
/** A caught-up subscription parks in waitForData for this long, then checks again. */
export const WAIT_SLICE_MS = 60_000;
/** When the server's read budget is spent, a subscription tries to read again after this long. */
export const BUDGET_RETRY_MS = 20;
/** When a partition has too many parked readers, a subscription retries after this long. */
export const WAITER_RETRY_MS = 1_000;
/** More than this many malformed frames in a row close the connection (close code 4000). */
export const INVALID_FRAME_LIMIT = 10;
/** `slow_down.retry_after_ms`, and the least time between two slow_down frames. */
export const SLOW_DOWN_MS = 50;
/** Consumer groups one connection may join at once. */
export const MAX_GROUPS_PER_SESSION = 64;
/** Offsets one commit frame may carry. */
export const MAX_COMMITS_PER_FRAME = 10_000;
/** Longest accepted subscription name or request id string. */
export const MAX_NAME_LENGTH = 256;
/**
 * Longest record header name accepted from a producer, in characters: at most 3 UTF-8 bytes
 * each, so it always fits the binary subprotocol's u16 name length.
 */
export const MAX_HEADER_NAME_LENGTH = 16_384;
