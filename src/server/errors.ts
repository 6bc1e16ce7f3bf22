/**
 * The one place error codes become HTTP statuses (and WebSocket close codes). Engine errors carry
 * their own stable codes (src/engine/errors.ts), the streaming protocol's are in
 * src/broker/errors.ts; the codes below are the HTTP layer's own. Every error body has the
 * shape `{"error":{"code":"...","message":"..."}}`.
 */
import { STATUS_CODES as STATUS_TEXT } from 'node:http';
import type { Logger } from 'pino';
import { BrookError, type EngineErrorCode } from '../engine/index.js';
import { StreamError, type SessionCloseReason, type StreamErrorCode } from '../broker/index.js';
import { ChannelError, type ChannelErrorCode } from '../channels/index.js';
import { QueueError, type QueueErrorCode } from '../queues/index.js';
import { CdcError, type CdcErrorCode } from '../cdc/index.js';

export type ServerErrorCode =
  | 'INVALID_JSON'
  | 'INVALID_REQUEST'
  | 'INVALID_TOPIC_NAME'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'MESSAGE_TOO_LARGE'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'RATE_LIMITED'
  | 'AUTH_UNAVAILABLE'
  | 'GROUP_NOT_EMPTY'
  | 'INTERNAL';

/** Codes of HTTP answers and of WebSocket `error` frames (docs/protocol.md). */
export type ErrorCode = EngineErrorCode | ServerErrorCode | StreamErrorCode | QueueErrorCode | ChannelErrorCode | CdcErrorCode;

const STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_JSON: 400,
  INVALID_REQUEST: 400,
  INVALID_FRAME: 400,
  INVALID_ARGUMENT: 400,
  INVALID_TOPIC_NAME: 400,
  INVALID_QUEUE_NAME: 400,
  INVALID_CHANNEL: 400,
  INVALID_FILTER: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  SUBSCRIPTION_NOT_FOUND: 404,
  TOPIC_NOT_FOUND: 404,
  UNKNOWN_CHANNEL: 404,
  PARTITION_NOT_FOUND: 404,
  UNKNOWN_MEMBER: 404,
  QUEUE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  TOPIC_EXISTS: 409,
  OUT_OF_ORDER_SEQUENCE: 409,
  STALE_GENERATION: 409,
  NOT_PARTITION_OWNER: 409,
  SUBSCRIPTION_EXISTS: 409,
  GROUP_NOT_EMPTY: 409,
  UNKNOWN_RECEIPT: 409,
  MESSAGE_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  OFFSET_OUT_OF_RANGE: 416,
  TOO_MANY_WAITERS: 429,
  PARTITION_BUSY: 429,
  RATE_LIMITED: 429,
  QUEUE_FULL: 429,
  CHANNEL_LIMIT: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  CORRUPT_RECORD: 500,
  STORAGE_ERROR: 500,
  ENGINE_CLOSED: 503,
  COORDINATOR_NOT_AVAILABLE: 503,
  QUEUE_CLOSED: 503,
  AUTH_UNAVAILABLE: 503,
  // CDC admin (docs/http-api.md, "CDC"); the source's own failures only appear in its status.
  CDC_CONFIG_INVALID: 400,
  CDC_SNAPSHOT_NO_PRIMARY_KEY: 400,
  CDC_SOURCE_NOT_FOUND: 404,
  CDC_TABLE_NOT_FOUND: 404,
  CDC_SNAPSHOT_NOT_FOUND: 404,
  CDC_SNAPSHOT_IN_PROGRESS: 409,
  CDC_NOT_STREAMING: 503,
  CDC_CONNECTION: 503,
  CDC_SLOT_IN_USE: 503,
  CDC_WAL_LEVEL: 500,
  CDC_PERMISSION_DENIED: 500,
  CDC_NO_REPLICA_IDENTITY: 500,
  CDC_SLOT_INVALIDATED: 500,
  CDC_SLOT_PLUGIN: 500,
  CDC_PROTOCOL: 500,
  CDC_SNAPSHOT_WINDOW_OVERFLOW: 500,
};

/** Extra headers some statuses call for. */
const HEADERS: Partial<Record<ErrorCode, Readonly<Record<string, string>>>> = {
  TOO_MANY_WAITERS: { 'retry-after': '1' },
  PARTITION_BUSY: { 'retry-after': '1' },
  RATE_LIMITED: { 'retry-after': '1' },
  QUEUE_FULL: { 'retry-after': '1' },
  QUEUE_CLOSED: { 'retry-after': '1' },
  ENGINE_CLOSED: { 'retry-after': '1' },
  COORDINATOR_NOT_AVAILABLE: { 'retry-after': '1' },
  CDC_NOT_STREAMING: { 'retry-after': '1' },
};

/**
 * An error raised by the server itself (bad input, unknown route, refused credentials, a quota,
 * ...). Subclasses (UnauthorizedError, ForbiddenError, RateLimitedError) are shared with the
 * WebSocket transport, which reads `code` and ignores `headers`.
 */
export class HttpError extends Error {
  constructor(
    readonly code: ServerErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function statusFor(code: ErrorCode): number {
  return STATUS[code];
}

/** Why a WebSocket connection is ended by the server. */
export type CloseReason =
  | SessionCloseReason
  | 'SHUTTING_DOWN'
  | 'UNAUTHORIZED'
  | 'AUTH_UNAVAILABLE'
  | 'HEARTBEAT_TIMEOUT'
  | 'TOO_MANY_CONNECTIONS'
  | 'SLOW_CLIENT'
  | 'TOO_MANY_USER_CONNECTIONS'
  | 'TOKEN_EXPIRED';

/** WebSocket close codes (docs/protocol.md, "Close codes"); 1009 for oversized frames is sent by `ws` itself. */
const CLOSE_CODES: Readonly<Record<CloseReason, number>> = {
  SHUTTING_DOWN: 1001,
  UNAUTHORIZED: 1008,
  AUTH_UNAVAILABLE: 1013,
  INVALID_FRAME: 4000,
  HEARTBEAT_TIMEOUT: 4001,
  TOO_MANY_CONNECTIONS: 4008,
  // Both endpoints: the token's exp passed while connected.
  TOKEN_EXPIRED: 4010,
  // /v1/realtime (docs/channels.md, "Close codes")
  SLOW_CLIENT: 4004,
  TOO_MANY_USER_CONNECTIONS: 4009,
};

export function closeCodeFor(reason: CloseReason): number {
  return CLOSE_CODES[reason];
}

export interface ErrorReply {
  readonly code: ErrorCode;
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Turns anything thrown by a handler into a response. Known errors keep their code; anything
 * else is logged with its stack and answered as `INTERNAL` without leaking details.
 */
export function errorReply(err: unknown, logger: Logger, context: Readonly<Record<string, unknown>>): ErrorReply {
  let code: ErrorCode;
  let message: string;
  let headers: Readonly<Record<string, string>> = {};
  if (err instanceof HttpError) {
    ({ code, message, headers } = err);
  } else if (err instanceof ChannelError) {
    code = err.code;
    message = err.message;
    if (err.retryAfterMs !== undefined) headers = { 'retry-after': String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))) };
  } else if (err instanceof BrookError || err instanceof StreamError || err instanceof QueueError || err instanceof CdcError) {
    code = err.code;
    message = err.message;
    headers = HEADERS[code] ?? {};
  } else {
    code = 'INTERNAL';
    message = 'internal server error';
  }
  const status = STATUS[code];
  if (status >= 500) logger.error({ ...context, err, code }, 'request failed');
  else logger.debug({ ...context, code, message }, 'request refused');
  return { code, status, body: JSON.stringify({ error: { code, message } }), headers };
}

/**
 * A complete HTTP/1.1 error response for a socket the HTTP parser gave up on (no request object
 * exists to answer through); the connection closes after it.
 */
export function rawErrorResponse(code: ServerErrorCode, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  const status = STATUS[code];
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n\r\n${body}`
  );
}
