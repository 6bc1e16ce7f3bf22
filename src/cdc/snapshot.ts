/**
 * Initial snapshot (docs/cdc.md, "Snapshot, then stream"): reads the captured tables inside the
 * slot's exported snapshot, through a cursor in chunks (bounded memory), and appends each row as
 * an `op: "r"` event. One chunk is appended while the next is fetched. Progress records go to
 * `<prefix>.snapshot-progress`.
 */
import pg from 'pg';
import type { Engine } from '../engine/index.js';
import { encodeEvent, TableSchema, type ChangeEvent } from './envelope.js';
import { fromPgError } from './errors.js';
import type { LogWriter, DurabilityWaiter } from './log-writer.js';
import { formatLsn, type Lsn } from './lsn.js';
import type { CdcMetricsSink } from './metrics.js';
import { partitionForKey } from '../engine/index.js';
import { SNAPSHOT_HEADER } from './positions.js';
import { quoteIdent } from './replication-connection.js';
import type { PreparedTable } from './stream-pipeline.js';
import type { Tuple } from './pgoutput-decoder.js';

/** A progress record in `<prefix>.snapshot-progress`. */
export type SnapshotProgress =
  | {
      readonly snapshot: string;
      readonly status: 'started';
      readonly tables: readonly string[];
      /** An on-demand (blocking) snapshot of some tables while streaming, not the initial one. */
      readonly onDemand?: boolean;
    }
  | {
      readonly snapshot: string;
      readonly status: 'table_done';
      readonly table: string;
      readonly rows: number;
      /** Set when the table was read after the slot's start (a resumed snapshot): stream events committed before it are in the read. */
      readonly skipBefore?: string;
    }
  | {
      readonly snapshot: string;
      readonly status: 'complete';
      /** Tables read at a later point than the slot's start: stream events before it are skipped. */
      readonly skip: Readonly<Record<string, string>>;
    };

export interface SnapshotState {
  readonly snapshot: string | null;
  readonly complete: boolean;
  /** Tables the last snapshot set out to read. */
  readonly tables: ReadonlySet<string>;
  readonly done: ReadonlySet<string>;
  readonly skip: Readonly<Record<string, string>>;
}

/** Every record of the (small, one-partition) progress topic, parsed, in order. */
export async function forEachProgressRecord(engine: Engine, topic: string, visit: (record: { readonly status?: unknown }) => void): Promise<void> {
  const { lowWatermark, highWatermark } = await engine.watermarks(topic, 0);
  let offset = lowWatermark;
  while (offset < highWatermark) {
    const r = await engine.read(topic, 0, offset, { maxRecords: 1000 });
    for (const rec of r.records) if (rec.value) visit(JSON.parse(Buffer.from(rec.value).toString('utf8')) as { readonly status?: unknown });
    if (r.records.length === 0) break;
    offset = r.nextOffset;
  }
}

/** Reads the whole (small) progress topic: where the last snapshot got to. */
export async function readSnapshotState(engine: Engine, topic: string): Promise<SnapshotState> {
  let snapshot: string | null = null;
  let complete = false;
  let done = new Set<string>();
  let tables = new Set<string>();
  // Skip points accumulate across snapshots: each stays needed until the slot is confirmed past it.
  let skip: Record<string, string> = {};
  await forEachProgressRecord(engine, topic, (record) => {
    const p = record as SnapshotProgress;
    if (p.status === 'started') {
      // A new snapshot starts over; a resumed one writes no `started`.
      done = new Set();
      tables = new Set(p.tables);
      snapshot = p.snapshot;
      complete = false;
    } else if (p.status === 'table_done') {
      done.add(p.table);
      if (p.skipBefore !== undefined) skip[p.table] = p.skipBefore;
    } else if (p.status === 'complete') {
      complete = true;
      skip = { ...skip, ...p.skip };
    }
    // Other statuses belong to incremental snapshots (snapshot-status.ts), which never block a start.
  });
  return { snapshot, complete, tables, done, skip };
}

/** Where a snapshot's rows and progress go: the same for the blocking and the incremental one. */
export interface SnapshotSink {
  readonly db: string;
  readonly source: string;
  readonly chunkRows: number;
  readonly writer: LogWriter;
  readonly engine: Engine;
  readonly progressTopic: string;
  readonly metrics: CdcMetricsSink;
}

export interface SnapshotRunOptions extends SnapshotSink {
  readonly url: string;
  readonly snapshotName: string;
  readonly consistentPoint: Lsn;
  readonly snapshotId: string;
  readonly tables: readonly PreparedTable[];
  readonly failed: () => unknown;
  /**
   * A resumed snapshot: each table starts with a `t` event (snapshot: true) so a consumer that
   * applies events in order drops rows read before the interruption (some may have been deleted
   * since) before the re-read.
   */
  readonly resetFirst: boolean;
  /** After a table's `table_done` record is appended. */
  readonly onTableDone?: (table: string, rows: number) => void;
}

/** Column values as PostgreSQL's text output (type-mapping.ts maps them). */
export const RAW_TEXT = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

/** Snapshots `tables` in order; each table's `table_done` record is appended once its rows are durable. */
export async function runSnapshot(o: SnapshotRunOptions): Promise<void> {
  const client = new pg.Client({
    connectionString: o.url,
    options: '-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c IntervalStyle=postgres -c bytea_output=hex',
    types: RAW_TEXT,
  } as pg.ClientConfig);
  client.on('error', () => undefined); // surfaced by the next query
  try {
    await client.connect();
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`SET TRANSACTION SNAPSHOT '${o.snapshotName.replace(/'/g, "''")}'`);
    const lsnText = formatLsn(o.consistentPoint);
    for (const table of o.tables) {
      const qualified = `${table.schema}.${table.table}`;
      const rows = await snapshotTable(client, table, lsnText, o);
      await append(o.engine, o.progressTopic, {
        snapshot: o.snapshotId,
        status: 'table_done',
        table: qualified,
        rows,
        ...(o.resetFirst ? { skipBefore: lsnText } : {}),
      });
      o.onTableDone?.(qualified, rows);
    }
    await client.query('COMMIT');
  } catch (err) {
    throw fromPgError(err, { slot: o.source });
  } finally {
    await client.end().catch(() => undefined); // the snapshot is over either way
  }
}

async function snapshotTable(client: pg.Client, table: PreparedTable, lsnText: string, o: SnapshotRunOptions): Promise<number> {
  const name = `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
  const order = table.primaryKey.length > 0 ? ` ORDER BY ${table.primaryKey.map(quoteIdent).join(', ')}` : '';
  await client.query(`DECLARE brook_snapshot NO SCROLL CURSOR FOR SELECT * FROM ${name}${order}`);
  let schema: TableSchema | null = null;
  let total = 0;
  let previous: DurabilityWaiter | null = null;
  const snapshotHeader = { [SNAPSHOT_HEADER]: o.snapshotId };
  if (o.resetFirst) {
    const now = Date.now();
    const reset: ChangeEvent = {
      before: null,
      after: null,
      op: 't',
      source: { connector: 'brook', db: o.db, schema: table.schema, table: table.table, lsn: lsnText, txId: null, seq: null, ts_ms: now, snapshot: true },
      ts_ms: now,
    };
    const value = encodeEvent(reset);
    previous = { outstanding: 0 };
    for (let p = 0; p < table.partitions; p++) o.writer.write(table.topic, p, { key: null, value, headers: snapshotHeader }, previous);
  }
  for (;;) {
    const result = await client.query<unknown[]>({ text: `FETCH ${o.chunkRows} FROM brook_snapshot`, rowMode: 'array' });
    if (schema === null) {
      const columns = result.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID, typeMod: -1, isKey: false }));
      schema = new TableSchema(table.oid, table.schema, table.table, table.topic, table.replicaIdentity, columns, table.primaryKey.length > 0 ? table.primaryKey : columns.map((c) => c.name), await customTypes(client, columns.map((c) => c.typeOid)));
    }
    if (result.rows.length === 0) break;
    // Wait for the chunk before the last: one chunk appends while this one was fetched.
    if (previous) await waitDurable(previous, o);
    const waiter: DurabilityWaiter = { outstanding: 0 };
    const now = Date.now();
    for (const row of result.rows) {
      const tuple = row as Tuple;
      const event: ChangeEvent = {
        before: null,
        after: schema.row(tuple),
        op: 'r',
        source: { connector: 'brook', db: o.db, schema: table.schema, table: table.table, lsn: lsnText, txId: null, seq: null, ts_ms: now, snapshot: true },
        ts_ms: now,
      };
      const key = schema.key(tuple);
      o.writer.write(table.topic, key === null ? 0 : partitionForKey(key, table.partitions), { key, value: encodeEvent(event), headers: snapshotHeader }, waiter);
    }
    total += result.rows.length;
    o.metrics.events(o.source, 'r', result.rows.length);
    previous = waiter;
  }
  await client.query('CLOSE brook_snapshot');
  if (previous) await waitDurable(previous, o);
  return total;
}

/** Polls a waiter; snapshot chunks are large, so this runs a few times per chunk, not per row. */
async function waitDurable(waiter: DurabilityWaiter, o: SnapshotRunOptions): Promise<void> {
  while (waiter.outstanding > 0) {
    const failed = o.failed();
    if (failed !== null) throw failed;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export async function customTypes(client: pg.Client, oids: number[]): Promise<Map<number, { name: string }>> {
  const r = await client.query<{ oid: string; typname: string }>('SELECT oid, typname FROM pg_type WHERE oid = ANY($1::oid[]) AND oid >= 16384', [oids]);
  return new Map(r.rows.map((row) => [Number(row.oid), { name: row.typname }]));
}

export async function append(engine: Engine, topic: string, progress: SnapshotProgress): Promise<void> {
  await engine.append(topic, 0, [{ key: null, value: Buffer.from(JSON.stringify(progress)) }]);
}
