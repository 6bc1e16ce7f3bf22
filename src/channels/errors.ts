/**
 * Channel errors: one class, a stable `code` per failure mode, mapped to HTTP statuses and
 * WebSocket `error` frames in src/server/errors.ts.
 */
export type ChannelErrorCode =
  | 'INVALID_CHANNEL'
  | 'INVALID_FILTER'
  | 'UNKNOWN_CHANNEL'
  | 'FORBIDDEN'
  | 'MESSAGE_TOO_LARGE'
  | 'CHANNEL_LIMIT'
  | 'RATE_LIMITED'
  | 'STORAGE_ERROR';

export class ChannelError extends Error {
  constructor(
    readonly code: ChannelErrorCode,
    message: string,
    /** For RATE_LIMITED: when trying again makes sense. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ChannelError';
  }
}
