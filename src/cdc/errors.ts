/**
 * CDC errors: one class, a stable `code` per failure mode (docs/cdc.md, "Errors"), the message
 * says how to fix what the user got wrong, `cause` keeps the PostgreSQL error.
 */
export type CdcErrorCode =
  | 'CDC_WAL_LEVEL'
  | 'CDC_PERMISSION_DENIED'
  | 'CDC_NO_REPLICA_IDENTITY'
  | 'CDC_TABLE_NOT_FOUND'
  | 'CDC_SLOT_IN_USE'
  | 'CDC_SLOT_INVALIDATED'
  | 'CDC_SLOT_PLUGIN'
  | 'CDC_CONFIG_INVALID'
  | 'CDC_CONNECTION'
  | 'CDC_PROTOCOL'
  | 'CDC_SOURCE_NOT_FOUND'
  | 'CDC_NOT_STREAMING'
  | 'CDC_SNAPSHOT_IN_PROGRESS'
  | 'CDC_SNAPSHOT_NOT_FOUND'
  | 'CDC_SNAPSHOT_NO_PRIMARY_KEY'
  | 'CDC_SNAPSHOT_WINDOW_OVERFLOW';

export class CdcError extends Error {
  constructor(
    readonly code: CdcErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CdcError';
  }

  /** Errors the source cannot recover from by reconnecting. */
  get fatal(): boolean {
    return this.code !== 'CDC_CONNECTION';
  }
}

export function walLevelError(actual: string): CdcError {
  return new CdcError(
    'CDC_WAL_LEVEL',
    `PostgreSQL has wal_level=${actual}; CDC needs wal_level=logical. Fix: run "ALTER SYSTEM SET wal_level = logical;" as a superuser and restart PostgreSQL (wal_level only changes on restart).`,
  );
}

export function slotInvalidatedError(slot: string, cause?: unknown): CdcError {
  return new CdcError(
    'CDC_SLOT_INVALIDATED',
    `replication slot "${slot}" was invalidated: PostgreSQL removed WAL it still needed (max_slot_wal_keep_size), so changes in between are lost. Fix: drop the slot (SELECT pg_drop_replication_slot('${slot}')) and start again; Brook then takes a new snapshot.`,
    { cause },
  );
}

interface PgErrorLike {
  readonly code?: string;
  readonly message: string;
}

function isPgError(err: unknown): err is PgErrorLike {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/** Maps a PostgreSQL error seen on a replication or catalog connection to a CdcError. */
export function fromPgError(err: unknown, context: { slot: string; user?: string }): CdcError {
  if (err instanceof CdcError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (isPgError(err)) {
    const code = err.code ?? '';
    if (code === '55006' || /is active for PID/i.test(message)) {
      return new CdcError(
        'CDC_SLOT_IN_USE',
        `replication slot "${context.slot}" is in use by another process (${message}). Fix: stop the other consumer (another Brook?) or give this source another slot name.`,
        { cause: err },
      );
    }
    if (/has been invalidated|cannot read from logical replication slot|can no longer get changes from replication slot/i.test(message)) {
      return slotInvalidatedError(context.slot, err);
    }
    if (/wal_level/i.test(message)) {
      return new CdcError('CDC_WAL_LEVEL', `${message}. Fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL.`, { cause: err });
    }
    if (code === '42501' || code === '28000' || /must be superuser or replication role|permission denied/i.test(message)) {
      const who = context.user === undefined ? 'the CDC role' : `role "${context.user}"`;
      return new CdcError(
        'CDC_PERMISSION_DENIED',
        `${who} lacks a privilege CDC needs (${message}). Fix: ALTER ROLE ${context.user ?? '<role>'} REPLICATION; and GRANT SELECT on the captured tables (creating the publication needs table ownership or CREATE on the database).`,
        { cause: err },
      );
    }
    if (code.startsWith('08') || code === '57P01' || code === '57P03') {
      return new CdcError('CDC_CONNECTION', `PostgreSQL connection failed: ${message}`, { cause: err });
    }
  }
  const errno = (err as { code?: unknown } | null)?.code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) {
    return new CdcError('CDC_CONNECTION', `PostgreSQL connection failed: ${message}`, { cause: err });
  }
  if (/Connection terminated|connection.*(closed|ended)/i.test(message)) {
    return new CdcError('CDC_CONNECTION', `PostgreSQL connection lost: ${message}`, { cause: err });
  }
  return new CdcError('CDC_PROTOCOL', message, { cause: err });
}
