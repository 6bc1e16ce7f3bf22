/**
 * Errors of the streaming protocol itself (bad frames, limits, unknown subscriptions). Engine
 * errors keep their own codes (src/engine/errors.ts); the transport maps codes to HTTP statuses
 * and WebSocket close codes in one place (src/server/errors.ts).
 */
import type { EngineErrorCode } from '../engine/index.js';
import type { QueueErrorCode } from '../queues/index.js';

export type StreamErrorCode =
  | 'INVALID_FRAME'
  | 'RATE_LIMITED'
  | 'SUBSCRIPTION_NOT_FOUND'
  | 'SUBSCRIPTION_EXISTS'
  /** The caller may not do this to this topic (see StreamSessionOptions.authorize). */
  | 'FORBIDDEN'
  | 'INTERNAL';

/** Every code an `error` frame can carry. */
export type FrameErrorCode = StreamErrorCode | EngineErrorCode | QueueErrorCode;

/** A refusal by the session; `code` is stable, `message` is for people. */
export class StreamError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StreamError';
  }
}

/** Why a session asks its transport to end the connection. */
export type SessionCloseReason = 'INVALID_FRAME';
