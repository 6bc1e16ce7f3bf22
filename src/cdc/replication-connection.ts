/**
 * The `replication=database` connection to PostgreSQL: slot creation with an exported snapshot,
 * START_REPLICATION with pgoutput, the CopyBoth framing (XLogData, primary keepalive, standby
 * status update) and TCP back-pressure by pausing the socket. Knows nothing about events.
 *
 * ```
 * XLogData   'w' dataStart:u64 walEnd:u64 sendTime:i64 payload
 * keepalive  'k' walEnd:u64 sendTime:i64 replyRequested:u8
 * status     'r' write:u64 flush:u64 apply:u64 clientTime:i64 replyRequested:u8   (client → server)
 * ```
 *
 * `messages 'true'` makes pgoutput pass on `pg_logical_emit_message` records (the incremental
 * snapshot's watermarks, docs/cdc.md).
 */
import pg from 'pg';
import { fromPgError } from './errors.js';
import { parseLsn, type Lsn } from './lsn.js';

/** Session settings the type mapping relies on (type-mapping.ts). */
export const SESSION_OPTIONS = '-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c IntervalStyle=postgres -c bytea_output=hex';

export interface CreatedSlot {
  readonly consistentPoint: Lsn;
  /** The exported snapshot; valid until this connection runs its next command or closes. */
  readonly snapshotName: string | null;
}

export interface StreamHandlers {
  /** One pgoutput message; `payload[offset]` is its first byte. Called synchronously per message. */
  onData(payload: Buffer, offset: number): void;
  onKeepalive(walEnd: Lsn, replyRequested: boolean): void;
}

interface PgConnectionInternals {
  readonly stream: { pause(): void; resume(): void; isPaused?: () => boolean };
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
}

const PG_EPOCH_MS = 946_684_800_000n;

export class ReplicationConnection {
  private readonly client: pg.Client;
  private connected = false;
  private streaming = false;
  private closed = false;
  private readonly slot: string;
  private readonly user: string | undefined;

  constructor(url: string, slot: string) {
    this.slot = slot;
    this.client = new pg.Client({ connectionString: url, replication: 'database', options: SESSION_OPTIONS } as pg.ClientConfig);
    this.user = this.client.user;
    // Errors after connect surface through the START_REPLICATION promise; this keeps an
    // 'error' event from becoming an uncaught exception.
    this.client.on('error', () => undefined);
  }

  async connect(): Promise<void> {
    try {
      await this.client.connect();
      this.connected = true;
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /** `CREATE_REPLICATION_SLOT`; `temporary` slots vanish with the connection (used for a fresh snapshot). */
  async createSlot(name: string, options: { exportSnapshot: boolean; temporary?: boolean }): Promise<CreatedSlot> {
    const sql = `CREATE_REPLICATION_SLOT ${quoteIdent(name)}${options.temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput (SNAPSHOT '${options.exportSnapshot ? 'export' : 'nothing'}')`;
    try {
      const result = await this.client.query<{ consistent_point: string; snapshot_name: string | null }>(sql);
      const row = result.rows[0];
      if (!row) throw new Error('CREATE_REPLICATION_SLOT returned no row');
      return { consistentPoint: parseLsn(row.consistent_point), snapshotName: row.snapshot_name };
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /**
   * Streams from the slot's confirmed position until `close()` or an error. Resolves when the
   * server ends the stream, rejects with a CdcError otherwise.
   */
  async stream(publication: string, handlers: StreamHandlers): Promise<void> {
    const connection = (this.client as unknown as { connection: PgConnectionInternals }).connection;
    connection.on('copyData', ({ chunk }) => {
      const kind = chunk[0];
      if (kind === 0x77 /* w */) handlers.onData(chunk, 25);
      else if (kind === 0x6b /* k */) handlers.onKeepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
    });
    this.streaming = true;
    const sql = `START_REPLICATION SLOT ${quoteIdent(this.slot)} LOGICAL 0/0 (proto_version '1', publication_names ${quoteLiteral(quoteIdent(publication))}, messages 'true')`;
    try {
      await this.client.query(sql);
    } catch (err) {
      if (this.closed) return;
      throw this.mapError(err);
    } finally {
      this.streaming = false;
    }
  }

  /** Standby status update: everything up to `lsn` is durably applied. */
  sendStatus(lsn: Lsn, replyRequested = false): void {
    if (!this.streaming || this.closed) return;
    const msg = Buffer.allocUnsafe(34);
    msg[0] = 0x72; // r
    msg.writeBigUInt64BE(lsn, 1);
    msg.writeBigUInt64BE(lsn, 9);
    msg.writeBigUInt64BE(lsn, 17);
    msg.writeBigInt64BE((BigInt(Date.now()) - PG_EPOCH_MS) * 1000n, 25);
    msg[33] = replyRequested ? 1 : 0;
    (this.client as unknown as { connection: PgConnectionInternals }).connection.sendCopyFromChunk(msg);
  }

  pause(): void {
    (this.client as unknown as { connection: PgConnectionInternals }).connection.stream.pause();
  }

  resume(): void {
    (this.client as unknown as { connection: PgConnectionInternals }).connection.stream.resume();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.connected) return;
    try {
      await this.client.end();
    } catch {
      // The connection is being torn down either way; a failing end() has nothing left to release.
    }
  }

  private mapError(err: unknown): Error {
    return fromPgError(err, { slot: this.slot, ...(this.user === undefined ? {} : { user: this.user }) });
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
