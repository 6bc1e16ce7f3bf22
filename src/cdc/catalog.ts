/**
 * Pre-flight checks and catalog reads on an ordinary connection: wal_level, the role's
 * replication right, the captured tables (primary keys, replica identity), the publication,
 * the slot's state and lag. Every failure a user can fix is a CdcError saying how.
 */
import pg from 'pg';
import { CdcError, fromPgError, slotInvalidatedError, walLevelError } from './errors.js';
import { parseLsn, type Lsn } from './lsn.js';
import { quoteIdent } from './replication-connection.js';

export interface CapturedTable {
  readonly oid: number;
  readonly schema: string;
  readonly table: string;
  /** Primary-key columns in key order; empty when the table has none (REPLICA IDENTITY FULL/INDEX). */
  readonly primaryKey: readonly string[];
  readonly replicaIdentity: 'd' | 'n' | 'f' | 'i';
}

export interface SlotState {
  readonly plugin: string | null;
  readonly active: boolean;
  readonly activePid: number | null;
  readonly walStatus: string | null;
  readonly confirmedFlush: Lsn | null;
}

export class Catalog {
  private readonly client: pg.Client;
  private connected = false;

  constructor(
    url: string,
    private readonly slot: string,
  ) {
    this.client = new pg.Client({ connectionString: url });
    this.client.on('error', () => undefined); // surfaced by the next query
  }

  async connect(): Promise<void> {
    try {
      await this.client.connect();
      this.connected = true;
    } catch (err) {
      throw fromPgError(err, { slot: this.slot });
    }
  }

  async close(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    try {
      await this.client.end();
    } catch {
      // Closing a broken connection: nothing left to release.
    }
  }

  get user(): string | undefined {
    return this.client.user;
  }

  get database(): string {
    return this.client.database ?? 'postgres';
  }

  /** wal_level must be logical and the role must be allowed to replicate. */
  async checkServer(): Promise<void> {
    const level = await this.query<{ wal_level: string }>('SHOW wal_level');
    const walLevel = level.rows[0]?.wal_level ?? 'unknown';
    if (walLevel !== 'logical') throw walLevelError(walLevel);
    const role = await this.query<{ rolname: string; ok: boolean }>(
      'SELECT rolname, (rolreplication OR rolsuper) AS ok FROM pg_roles WHERE rolname = current_user',
    );
    const row = role.rows[0];
    if (!row?.ok) {
      const name = row?.rolname ?? 'current_user';
      throw new CdcError(
        'CDC_PERMISSION_DENIED',
        `role "${name}" may not use logical replication. Fix: ALTER ROLE ${quoteIdent(name)} REPLICATION; (as a superuser) and GRANT SELECT on the captured tables.`,
      );
    }
  }

  /** Resolves `schema.table` names and whole schemas to tables, checking each can be captured. */
  async resolveTables(tables: readonly string[], schemas: readonly string[]): Promise<CapturedTable[]> {
    const found: CapturedTable[] = [];
    for (const qualified of tables) {
      const dot = qualified.indexOf('.');
      const rows = await this.describe('n.nspname = $1 AND c.relname = $2', [qualified.slice(0, dot), qualified.slice(dot + 1)]);
      if (rows.length === 0) throw new CdcError('CDC_TABLE_NOT_FOUND', `table ${qualified} does not exist (names are case-sensitive; use the unquoted lower-case name)`);
      found.push(...rows);
    }
    for (const schema of schemas) {
      const exists = await this.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      if (exists.rowCount === 0) throw new CdcError('CDC_TABLE_NOT_FOUND', `schema ${schema} does not exist`);
      found.push(...(await this.describe('n.nspname = $1', [schema])));
    }
    for (const t of found) assertCapturable(t);
    return found;
  }

  /** A table that showed up in the stream (schema mode: created after the start). */
  async tableByOid(oid: number): Promise<CapturedTable | null> {
    const rows = await this.describe('c.oid = $1', [oid]);
    return rows[0] ?? null;
  }

  /** Creates the publication, or adds the tables it is missing. */
  async ensurePublication(name: string, tables: readonly CapturedTable[], schemas: readonly string[]): Promise<void> {
    const exists = await this.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
    const tableList = (list: readonly CapturedTable[]): string => list.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`).join(', ');
    const explicit = tables.filter((t) => !schemas.includes(t.schema));
    if (exists.rowCount === 0) {
      const parts: string[] = [];
      if (explicit.length > 0) parts.push(`TABLE ${tableList(explicit)}`);
      if (schemas.length > 0) parts.push(`TABLES IN SCHEMA ${schemas.map(quoteIdent).join(', ')}`);
      await this.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR ${parts.join(', ')}`);
      return;
    }
    const published = await this.query<{ schemaname: string; tablename: string }>(
      'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1',
      [name],
    );
    const have = new Set(published.rows.map((r) => `${r.schemaname}.${r.tablename}`));
    const missing = explicit.filter((t) => !have.has(`${t.schema}.${t.table}`));
    if (missing.length > 0) await this.query(`ALTER PUBLICATION ${quoteIdent(name)} ADD TABLE ${tableList(missing)}`);
    const missingSchemas = schemas.filter((s) => tables.some((t) => t.schema === s && !have.has(`${t.schema}.${t.table}`)));
    if (missingSchemas.length > 0) await this.query(`ALTER PUBLICATION ${quoteIdent(name)} ADD TABLES IN SCHEMA ${missingSchemas.map(quoteIdent).join(', ')}`);
  }

  async slotState(): Promise<SlotState | null> {
    const r = await this.query<{ plugin: string | null; active: boolean; active_pid: number | null; wal_status: string | null; confirmed_flush_lsn: string | null }>(
      'SELECT plugin, active, active_pid, wal_status, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1',
      [this.slot],
    );
    const row = r.rows[0];
    if (!row) return null;
    return {
      plugin: row.plugin,
      active: row.active,
      activePid: row.active_pid,
      walStatus: row.wal_status,
      confirmedFlush: row.confirmed_flush_lsn === null ? null : parseLsn(row.confirmed_flush_lsn),
    };
  }

  /** Refuses a slot that cannot be streamed from by this source. */
  assertUsableSlot(state: SlotState): void {
    if (state.plugin !== 'pgoutput') {
      throw new CdcError('CDC_SLOT_PLUGIN', `replication slot "${this.slot}" uses plugin ${state.plugin ?? '(physical)'}, not pgoutput. Fix: drop it or configure another slot name.`);
    }
    if (state.walStatus === 'lost') throw slotInvalidatedError(this.slot);
    if (state.active) {
      throw new CdcError(
        'CDC_SLOT_IN_USE',
        `replication slot "${this.slot}" is in use by another process (pid ${state.activePid ?? '?'}). Fix: stop the other consumer or give this source another slot name.`,
      );
    }
  }

  /** Bytes of WAL the slot holds back: current WAL position minus the confirmed position. */
  async slotLagBytes(): Promise<number | null> {
    const r = await this.query<{ lag: string | null }>(
      'SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1',
      [this.slot],
    );
    const lag = r.rows[0]?.lag;
    return lag === undefined || lag === null ? null : Number(lag);
  }

  /** Writes a tiny non-transactional WAL record so an idle database still moves the slot. */
  async heartbeat(): Promise<void> {
    await this.query("SELECT pg_logical_emit_message(false, 'brook.heartbeat', '')");
  }

  async dropSlot(): Promise<void> {
    await this.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1', [this.slot]);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.client.query<R>(sql, params);
    } catch (err) {
      throw fromPgError(err, { slot: this.slot, ...(this.client.user === undefined ? {} : { user: this.client.user }) });
    }
  }

  private async describe(where: string, params: unknown[]): Promise<CapturedTable[]> {
    const r = await this.query<{ oid: number; nspname: string; relname: string; relreplident: string; pk: string[] | null }>(
      `SELECT c.oid::int AS oid, n.nspname, c.relname, c.relreplident::text AS relreplident,
              (SELECT array_agg(a.attname::text ORDER BY k.ord)
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND ${where}
        ORDER BY n.nspname, c.relname`,
      params,
    );
    return r.rows.map((row) => ({
      oid: row.oid,
      schema: row.nspname,
      table: row.relname,
      primaryKey: row.pk ?? [],
      replicaIdentity: row.relreplident as CapturedTable['replicaIdentity'],
    }));
  }
}

/** Without a primary key (or a replica identity), PostgreSQL cannot say which row an UPDATE or DELETE hit. */
export function assertCapturable(t: CapturedTable): void {
  const name = `${t.schema}.${t.table}`;
  if (t.replicaIdentity === 'n') {
    throw new CdcError('CDC_NO_REPLICA_IDENTITY', `table ${name} has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be captured. Fix: ALTER TABLE ${name} REPLICA IDENTITY DEFAULT (with a primary key) or FULL.`);
  }
  if (t.replicaIdentity === 'd' && t.primaryKey.length === 0) {
    throw new CdcError(
      'CDC_NO_REPLICA_IDENTITY',
      `table ${name} has no primary key and no replica identity, so its updates and deletes cannot be captured (and would fail once it is published). Fix: add a primary key, or ALTER TABLE ${name} REPLICA IDENTITY FULL.`,
    );
  }
}
