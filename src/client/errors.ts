/**
 * SDK errors. One class per failure mode, `name` equal to the class name, a stable `code`.
 * Errors answered by the server keep the server's code (docs/protocol.md, "error") in
 * {@link BrookServerError}; the others are raised by the SDK itself.
 */

/** Codes the SDK raises itself. */
export type ClientErrorCode =
  | 'INVALID_ARGUMENT'
  | 'MESSAGE_TOO_LARGE'
  | 'CONNECTION_LOST'
  | 'CONNECTION_CLOSED'
  | 'REQUEST_TIMEOUT'
  | 'TOO_MANY_PENDING_REQUESTS'
  | 'CLIENT_CLOSED'
  | 'DECODE_FAILED'
  | 'PROTOCOL_ERROR';

/**
 * Codes the server sends (docs/protocol.md). Listed for editors; a newer server may send
 * others, so `BrookServerError.code` is typed open-ended.
 */
export type ServerErrorCode =
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'INVALID_FRAME'
  | 'INVALID_ARGUMENT'
  | 'INVALID_TOPIC_NAME'
  | 'TOPIC_NOT_FOUND'
  | 'PARTITION_NOT_FOUND'
  | 'MESSAGE_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'OFFSET_OUT_OF_RANGE'
  | 'OUT_OF_ORDER_SEQUENCE'
  | 'UNKNOWN_MEMBER'
  | 'STALE_GENERATION'
  | 'NOT_PARTITION_OWNER'
  | 'CORRUPT_RECORD'
  | 'ENGINE_CLOSED'
  | 'TOO_MANY_WAITERS'
  | 'PARTITION_BUSY'
  | 'COORDINATOR_NOT_AVAILABLE'
  | 'STORAGE_ERROR'
  | 'INTERNAL';

/** Base class of every error the SDK rejects with. */
export abstract class BrookClientError extends Error {
  abstract readonly code: string;
  /** True when trying again (after a reconnect or a pause) may succeed. */
  abstract readonly retriable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Server codes worth retrying: nothing was done, or the condition passes. */
const RETRIABLE_SERVER_CODES: ReadonlySet<string> = new Set([
  'RATE_LIMITED',
  'TOO_MANY_WAITERS',
  'PARTITION_BUSY',
  'COORDINATOR_NOT_AVAILABLE',
  'ENGINE_CLOSED',
]);

/** An `error` frame answering a request; `code` is the server's stable code. */
export class BrookServerError extends BrookClientError {
  readonly retriable: boolean;
  constructor(
    readonly code: ServerErrorCode | (string & Record<never, never>),
    message: string,
  ) {
    super(message);
    this.retriable = RETRIABLE_SERVER_CODES.has(code);
  }
}

/** The caller passed something the SDK refuses before sending anything. */
export class InvalidArgumentError extends BrookClientError {
  readonly code = 'INVALID_ARGUMENT';
  readonly retriable = false;
}

/** A record larger than the server's `max_record_bytes` (checked before it is sent). */
export class MessageTooLargeError extends BrookClientError {
  readonly code = 'MESSAGE_TOO_LARGE';
  readonly retriable = false;
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`record of ${size} bytes exceeds the server's limit of ${limit} bytes`);
  }
}

/**
 * The connection dropped while a request was outstanding. Whether the server acted on it is
 * unknown; the SDK reconnects, and producers retry (idempotent producers without duplicates).
 */
export class ConnectionLostError extends BrookClientError {
  readonly code = 'CONNECTION_LOST';
  readonly retriable = true;
}

/**
 * The server closed the connection for a reason reconnecting cannot fix (authentication
 * failed with a fixed token, frames too large, malformed frames); the client is closed.
 */
export class ConnectionClosedError extends BrookClientError {
  readonly code = 'CONNECTION_CLOSED';
  readonly retriable = false;
  constructor(
    readonly closeCode: number,
    readonly reason: string,
  ) {
    super(`the server closed the connection (${closeCode}${reason === '' ? '' : `: ${reason}`})`);
  }
}

/** No reply within `requestTimeoutMs`; whether the server acted on the request is unknown. */
export class RequestTimeoutError extends BrookClientError {
  readonly code = 'REQUEST_TIMEOUT';
  readonly retriable = true;
  constructor(
    readonly type: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to ${type} within ${timeoutMs} ms`);
  }
}

/** More requests outstanding than `maxPendingRequests`; nothing was sent. */
export class TooManyPendingRequestsError extends BrookClientError {
  readonly code = 'TOO_MANY_PENDING_REQUESTS';
  readonly retriable = true;
  constructor(readonly limit: number) {
    super(`more than ${limit} requests are waiting for a reply`);
  }
}

/** The client, producer or consumer was closed before the operation completed. */
export class ClientClosedError extends BrookClientError {
  readonly code = 'CLIENT_CLOSED';
  readonly retriable = false;
  constructor(what = 'client') {
    super(`the ${what} is closed`);
  }
}

/** The consumer's `decode` hook threw for a record; the record is skipped, the consumer goes on. */
export class DecodeError extends BrookClientError {
  readonly code = 'DECODE_FAILED';
  readonly retriable = false;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    cause: unknown,
  ) {
    super(`decode failed for ${topic}/${partition}@${offset}`, { cause });
  }
}

/** The server sent a frame the SDK cannot understand. */
export class ProtocolError extends BrookClientError {
  readonly code = 'PROTOCOL_ERROR';
  readonly retriable = false;
}

/** Anything thrown, as an Error (a non-Error throw is wrapped, the value kept as `cause`). */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err), { cause: err });
}

export function isRetriable(err: unknown): boolean {
  return err instanceof BrookClientError && err.retriable;
}
