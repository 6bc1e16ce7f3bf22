import { BrookError, EngineClosedError, StorageError } from '../errors.js';

/**
 * NATS and JetStream failures, mapped to Brook's stable errors. No nats type crosses the Engine
 * interface: callers see BrookError subclasses, with the original error as `cause`.
 */

/** JetStream API error codes (`err_code`), from nats-server's errors.json. */
export const JsErr = {
  StreamMsgTooLarge: 10054,
  StreamNameInUse: 10058,
  StreamNotFound: 10059,
  WrongLastSequence: 10071,
} as const;

interface ErrorShape {
  readonly code?: unknown;
  readonly api_error?: { readonly err_code?: unknown; readonly code?: unknown };
}

export function jsErrorCode(err: unknown): number | undefined {
  const code = (err as ErrorShape | null)?.api_error?.err_code;
  return typeof code === 'number' ? code : undefined;
}

function natsCode(err: unknown): string | undefined {
  const code = (err as ErrorShape | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isStreamNotFound(err: unknown): boolean {
  return jsErrorCode(err) === JsErr.StreamNotFound;
}

/** Nobody subscribed to the subject: for JetStream API calls, JetStream is not available. */
export function isNoResponders(err: unknown): boolean {
  return natsCode(err) === '503' && jsErrorCode(err) === undefined;
}

function isConnectionGone(err: unknown): boolean {
  const code = natsCode(err);
  return code === 'CONNECTION_CLOSED' || code === 'CONNECTION_DRAINING';
}

/**
 * Wraps anything that is not already a BrookError. `closing` tells a connection closed by
 * `Engine.close()` (EngineClosedError) from one lost otherwise (StorageError).
 */
export function toBrookError(err: unknown, what: string, closing: boolean): BrookError {
  if (err instanceof BrookError) return err;
  if (isConnectionGone(err)) {
    return closing ? new EngineClosedError() : new StorageError(`${what}: the NATS connection is closed`, { cause: err });
  }
  const code = natsCode(err);
  if (code === 'TIMEOUT') return new StorageError(`${what}: JetStream did not answer in time`, { cause: err });
  if (isNoResponders(err)) return new StorageError(`${what}: JetStream is not available on this NATS server`, { cause: err });
  const detail = err instanceof Error ? err.message : String(err);
  return new StorageError(`${what}: ${detail}`, { cause: err });
}
