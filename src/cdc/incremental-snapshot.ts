/**
 * Incremental (non-blocking) snapshot of some captured tables while streaming goes on
 * (docs/cdc.md, "Incremental snapshots"). Per chunk of a table, by primary key:
 *
 * 1. register a ChunkWindow, emit the low watermark `pg_logical_emit_message(true, 'brook.snapshot', 'low:<id>')`;
 * 2. `SELECT * FROM t WHERE (pk) > (last) ORDER BY pk LIMIT chunkRows`, hand the rows to the window;
 * 3. emit the high watermark; when the stream reaches it, the window appends the rows no change
 *    touched between the two watermarks, as `op: "r"`, on the watermark's transaction;
 * 4. once they are durable, append an `incremental_chunk` progress record (table, last key).
 *
 * Memory: one chunk (at most `chunkRows` rows) plus the window's early keys (MAX_EARLY_KEYS).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { partitionForKey } from '../engine/index.js';
import { encodeEvent, TableSchema, type ChangeEvent } from './envelope.js';
import { CdcError, fromPgError } from './errors.js';
import type { Tuple } from './pgoutput-decoder.js';
import { LSN_HEADER, SEQ_HEADER, SNAPSHOT_HEADER } from './positions.js';
import { quoteIdent, SESSION_OPTIONS } from './replication-connection.js';
import { customTypes, RAW_TEXT, type SnapshotSink } from './snapshot.js';
import type { IncrementalProgress, SnapshotTracker } from './snapshot-status.js';
import type { ObservedTransaction, PreparedTable } from './stream-pipeline.js';
import { ChunkWindow, WATERMARK_PREFIX, type ChunkRow, type WatermarkObserver } from './watermark-window.js';

/** Reads of one chunk whose window overflowed (MAX_EARLY_KEYS) before the snapshot gives up. */
export const MAX_WINDOW_ATTEMPTS = 10;

export interface IncrementalRunOptions extends SnapshotSink {
  readonly url: string;
  readonly tracker: SnapshotTracker;
  /** In the order to read them; tables the tracker has done are skipped. */
  readonly tables: readonly PreparedTable[];
  readonly observer: WatermarkObserver;
  /** Non-null once the session ended (the reason): the snapshot stops at its next check. */
  readonly failed: () => unknown;
  readonly logger: Logger;
}

interface ChunkTuple {
  readonly tuple: Tuple;
  readonly key: Buffer;
  readonly partition: number;
}

/** Runs (or resumes) the snapshot to its end; the caller records failures. */
export async function runIncrementalSnapshot(o: IncrementalRunOptions): Promise<void> {
  const client = new pg.Client({ connectionString: o.url, options: SESSION_OPTIONS, types: RAW_TEXT } as pg.ClientConfig);
  client.on('error', () => undefined); // surfaced by the next query
  try {
    await client.connect();
    for (const table of o.tables) {
      const name = `${table.schema}.${table.table}`;
      const progress = o.tracker.tables.get(name);
      if (!progress || progress.done) continue;
      o.tracker.table = name;
      await snapshotTable(client, table, progress.lastKey, o);
    }
    o.tracker.table = null;
    await record(o, { snapshot: o.tracker.id, status: 'incremental_complete' });
  } catch (err) {
    throw err instanceof CdcError ? err : fromPgError(err, { slot: o.source });
  } finally {
    await client.end().catch(() => undefined); // the snapshot is over either way
  }
}

async function snapshotTable(client: pg.Client, table: PreparedTable, resumeAfter: readonly string[] | null, o: IncrementalRunOptions): Promise<void> {
  const name = `${table.schema}.${table.table}`;
  if (table.primaryKey.length === 0) {
    throw new CdcError('CDC_SNAPSHOT_NO_PRIMARY_KEY', `table ${name} has no primary key, which an incremental snapshot pages by. Fix: use mode "blocking" for it.`);
  }
  const relation = `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
  const pk = table.primaryKey.map(quoteIdent);
  const order = pk.join(', ');
  const after = `(${pk.join(', ')}) > (${pk.map((_, i) => `$${i + 1}`).join(', ')})`;
  let lastKey = resumeAfter;
  let schema: TableSchema | null = null;
  let pkIndexes: number[] = [];
  let chunk = o.tracker.tables.get(name)?.chunks ?? 0;
  for (;;) {
    let attempt = 0;
    for (;;) {
      const stop = o.failed();
      if (stop !== null) throw stop;
      const id = `${o.tracker.id}.${chunk}.${attempt}`;
      let read: ChunkTuple[] = [];
      const window = new ChunkWindow<ChunkTuple>(id, table.oid, (rows, tx) => appendRows(rows, tx, table, schema!, o));
      o.observer.open(window);
      try {
        await emit(client, `low:${id}`);
        const result = await client.query<unknown[]>({
          text: `SELECT * FROM ${relation}${lastKey === null ? '' : ` WHERE ${after}`} ORDER BY ${order} LIMIT ${o.chunkRows}`,
          values: lastKey === null ? [] : [...lastKey],
          rowMode: 'array',
        });
        if (schema === null) {
          const columns = result.fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID, typeMod: -1, isKey: false }));
          schema = new TableSchema(table.oid, table.schema, table.table, table.topic, table.replicaIdentity, columns, table.primaryKey, await customTypes(client, columns.map((c) => c.typeOid)));
          pkIndexes = table.primaryKey.map((col) => columns.findIndex((c) => c.name === col));
        }
        const s = schema;
        read = result.rows.map((row) => {
          const tuple = row as Tuple;
          const keyText = s.keyJson(tuple)!;
          const key = Buffer.from(keyText);
          return { tuple, key, partition: partitionForKey(key, table.partitions) };
        });
        if (read.length === 0) {
          // Nothing left past the last key: the table is done, no window needed.
          await record(o, { snapshot: o.tracker.id, status: 'incremental_chunk', table: name, rows: 0, lastKey, last: true });
          return;
        }
        window.setRows(read.map((r): ChunkRow<ChunkTuple> => ({ keyText: r.key.toString(), row: r })));
        await emit(client, `high:${id}`);
        const outcome = await window.outcome;
        if (outcome.kind === 'overflow') {
          if (++attempt >= MAX_WINDOW_ATTEMPTS) {
            throw new CdcError('CDC_SNAPSHOT_WINDOW_OVERFLOW', `table ${name}: more than ${MAX_WINDOW_ATTEMPTS} reads of one chunk saw too many changes before the chunk was read; try again when the table is less busy, or use a smaller snapshotChunkRows`);
          }
          o.logger.warn({ snapshot: o.tracker.id, table: name, attempt }, 'incremental snapshot chunk window overflowed; reading the chunk again');
          continue;
        }
        await durable(outcome.tx, o);
        const last = read[read.length - 1]!.tuple;
        lastKey = pkIndexes.map((i) => last[i] as string);
        o.metrics.events(o.source, 'r', outcome.rows.length);
        await record(o, { snapshot: o.tracker.id, status: 'incremental_chunk', table: name, rows: outcome.rows.length, lastKey, last: read.length < o.chunkRows });
        chunk++;
        if (read.length < o.chunkRows) return;
        break;
      } finally {
        o.observer.release(window as ChunkWindow<unknown>);
      }
    }
  }
}

/** In stream order, at the high watermark: the chunk's rows, positioned on the watermark's transaction. */
function appendRows(rows: readonly ChunkTuple[], tx: ObservedTransaction, table: PreparedTable, schema: TableSchema, o: IncrementalRunOptions): void {
  const now = Date.now();
  // The watermark's position: a restart's dedupe floor (positions.ts) stays exact when a chunk row is a partition's last record.
  const headers = { [LSN_HEADER]: tx.lsnText, [SEQ_HEADER]: String(tx.seq), [SNAPSHOT_HEADER]: o.tracker.id };
  for (const r of rows) {
    const event: ChangeEvent = {
      before: null,
      after: schema.row(r.tuple),
      op: 'r',
      source: { connector: 'brook', db: o.db, schema: table.schema, table: table.table, lsn: tx.lsnText, txId: null, seq: null, ts_ms: now, snapshot: 'incremental' },
      ts_ms: now,
    };
    o.writer.write(table.topic, r.partition, { key: r.key, value: encodeEvent(event), headers }, tx.waiter);
  }
}

async function emit(client: pg.Client, content: string): Promise<void> {
  await client.query('SELECT pg_logical_emit_message(true, $1, $2)', [WATERMARK_PREFIX, content]);
}

/** Polls the watermark transaction's waiter; a few times per chunk, not per row. */
async function durable(tx: ObservedTransaction, o: IncrementalRunOptions): Promise<void> {
  while (tx.waiter.outstanding > 0) {
    const stop = o.failed();
    if (stop !== null) throw stop;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function record(o: IncrementalRunOptions, progress: IncrementalProgress): Promise<void> {
  await o.engine.append(o.progressTopic, 0, [{ key: null, value: Buffer.from(JSON.stringify(progress)) }]);
  o.tracker.apply(progress);
}
