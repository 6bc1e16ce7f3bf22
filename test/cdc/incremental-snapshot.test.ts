/**
 * Incremental (watermark) snapshots against the real PostgreSQL: streaming goes on meanwhile,
 * replaying the topic in order gives the table exactly, and a restart resumes from the last chunk.
 */
import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { parseLsn, type CdcSource, type SnapshotStatus } from '../../src/cdc/index.js';
import { requireService } from '../helpers/services.js';
import { sourceFixture } from './source-fixture.js';
import { eventually, readTopic, type TestDatabase, type TopicEvent } from './pg.js';

const available = await requireService('postgres');
const logger = pino({ level: 'silent' });

/** Applies the events in order, as a consumer would. */
function replay(events: readonly TopicEvent[]): [number, number][] {
  const state = new Map<number, number>();
  for (const { value: v } of events) {
    if (v.op === 't') state.clear();
    else if (v.op === 'd') state.delete(v.before!['id'] as number);
    else state.set(v.after!['id'] as number, v.after!['v'] as number);
  }
  return [...state].sort((a, b) => a[0] - b[0]);
}

describe.runIf(available)('CDC incremental snapshot', () => {
  let db: TestDatabase;
  let engine: EmbeddedEngine;
  const { startSource, stopSource } = sourceFixture({ database: 'brook_cdc_incr', dirPrefix: 'brook-cdc-incr-' }, logger, (d, e) => {
    db = d;
    engine = e;
  });
  /** Concurrent updates, deletes and upserts over ids 1..rows until stopped. */
  const load = async (table: string, rows: number): Promise<{ stop: () => Promise<number> }> => {
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    let writing = true;
    let n = 0;
    const running = (async () => {
      while (writing) {
        n++;
        await writer.query(`UPDATE ${table} SET v = v + 1 WHERE id = $1`, [1 + ((n * 31) % rows)]);
        await writer.query(`DELETE FROM ${table} WHERE id = $1`, [1 + ((n * 7919) % rows)]);
        await writer.query(`INSERT INTO ${table} VALUES ($1, 1000) ON CONFLICT (id) DO UPDATE SET v = ${table}.v + 10`, [1 + ((n * 104729) % rows)]);
      }
    })();
    return {
      async stop() {
        writing = false;
        await running;
        await writer.end();
        return n;
      },
    };
  };
  const caughtUp = async (source: CdcSource): Promise<void> => {
    const end = parseLsn((await db.client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
    await eventually(async () => {
      const s = source.status().confirmedLsn;
      return s !== null && parseLsn(s) >= end;
    }, 30_000, 'the stream to catch up');
  };
  const settled = (source: CdcSource, id: string): Promise<SnapshotStatus> =>
    eventually(async () => {
      const s = await source.snapshotStatus(id);
      return s.state === 'complete' || s.state === 'failed' ? s : null;
    }, 90_000, `snapshot ${id} to finish`);

  it('snapshots a table under concurrent writes while streaming goes on, and the topic replays to the table', async () => {
    await db.client.query(`CREATE TABLE inc_t (id int PRIMARY KEY, v int); INSERT INTO inc_t SELECT g, 0 FROM generate_series(1, 20000) g`);
    const prefix = db.unique('i1');
    // No initial snapshot: every row that is not changed meanwhile reaches the topic only through the incremental snapshot.
    const source = await startSource({ tables: ['public.inc_t'], slot: db.unique('slot'), publication: db.unique('pub'), topicPrefix: prefix, snapshot: false, snapshotChunkRows: 500 });
    const writes = await load('inc_t', 20000);
    const started = source.startSnapshot(['public.inc_t']);
    expect(started).toMatchObject({ mode: 'incremental', state: 'running', tables: [{ table: 'public.inc_t', done: false }] });
    // One at a time.
    expect(() => source.startSnapshot(['public.inc_t'])).toThrow(expect.objectContaining({ code: 'CDC_SNAPSHOT_IN_PROGRESS' }));

    // A change committed while the snapshot runs is streamed before the snapshot's last chunk.
    await eventually(async () => ((await source.snapshotStatus(started.id)).chunks >= 2 ? true : null), 60_000, 'two chunks');
    await db.client.query(`INSERT INTO inc_t VALUES (1000001, 42)`);
    const afterMarker = await source.snapshotStatus(started.id);
    expect(afterMarker.state).toBe('running');
    expect(source.status().snapshot?.id).toBe(started.id);

    const done = await settled(source, started.id);
    await writes.stop();
    await caughtUp(source);
    expect(done).toMatchObject({ state: 'complete', chunks: 40, error: null });
    expect(source.status().snapshot).toBeNull();

    const events = await readTopic(engine, `${prefix}.public.inc_t`);
    const marker = events.findIndex((e) => e.value.op === 'c' && e.value.after!['id'] === 1000001);
    const snapshotRows = events.filter((e) => e.value.op === 'r');
    expect(marker).toBeGreaterThanOrEqual(0);
    expect(events.lastIndexOf(snapshotRows[snapshotRows.length - 1]!)).toBeGreaterThan(marker);
    expect(snapshotRows.every((e) => e.value.source.snapshot === 'incremental' && e.headers['cdc-snapshot'] === started.id)).toBe(true);
    // Each row at most once from the snapshot; the rows counted are the rows appended.
    const ids = snapshotRows.map((e) => e.value.after!['id'] as number);
    expect(new Set(ids).size).toBe(ids.length);
    expect(done.rows).toBe(ids.length);
    // Rows changed while their chunk was read came from the stream instead: fewer r rows than rows.
    expect(ids.length).toBeLessThan(20000);
    const rows = await db.client.query<{ id: number; v: number }>('SELECT id, v FROM inc_t ORDER BY id');
    expect(replay(events)).toEqual(rows.rows.map((r) => [r.id, r.v]));
    await stopSource(source);
  }, 180_000);

  it('resumes after a restart from the last durable chunk', async () => {
    await db.client.query(`CREATE TABLE resume_i (id int PRIMARY KEY, v int); INSERT INTO resume_i SELECT g, 0 FROM generate_series(1, 30000) g`);
    const prefix = db.unique('i2');
    const options = { tables: ['public.resume_i'], slot: db.unique('slot'), publication: db.unique('pub'), topicPrefix: prefix, snapshot: false, snapshotChunkRows: 500 };
    let source = await startSource(options);
    const writes = await load('resume_i', 30000);
    const { id } = source.startSnapshot(['public.resume_i']);
    const before = await eventually(async () => {
      const s = await source.snapshotStatus(id);
      return s.chunks >= 3 ? s : null;
    }, 60_000, 'three chunks');
    await stopSource(source);
    const stopped = await source.snapshotStatus(id);
    expect(stopped.state).toBe('interrupted');
    expect(stopped.chunks).toBeLessThan(60);

    source = await startSource(options);
    // The new source finds the unfinished snapshot in the progress topic and goes on with it.
    const done = await settled(source, id);
    await writes.stop();
    await caughtUp(source);
    expect(done).toMatchObject({ id, state: 'complete', chunks: 60 });
    expect(done.chunks).toBeGreaterThan(before.chunks);

    const events = await readTopic(engine, `${prefix}.public.resume_i`);
    const ids = events.filter((e) => e.value.op === 'r').map((e) => e.value.after!['id'] as number);
    // Chunks done before the stop were not read again: at most the chunk in flight at the stop repeats.
    expect(ids.length - new Set(ids).size).toBeLessThanOrEqual(500);
    const progress = (await readTopic(engine, `${prefix}.snapshot-progress`)).map((e) => e.value as unknown as { status: string });
    expect(progress.filter((p) => p.status === 'incremental_started')).toHaveLength(1);
    expect(progress.filter((p) => p.status === 'incremental_chunk')).toHaveLength(60);
    const rows = await db.client.query<{ id: number; v: number }>('SELECT id, v FROM resume_i ORDER BY id');
    expect(replay(events)).toEqual(rows.rows.map((r) => [r.id, r.v]));
    // Stream events are never appended twice across the restart.
    const positions = events.filter((e) => e.value.op !== 'r').map((e) => `${e.headers['cdc-lsn']}|${e.headers['cdc-seq']}`);
    expect(new Set(positions).size).toBe(positions.length);
    await stopSource(source);
  }, 240_000);

  it('refuses tables it does not capture, tables without a primary key, and unknown snapshots', async () => {
    await db.client.query(`CREATE TABLE nopk_i (v int); ALTER TABLE nopk_i REPLICA IDENTITY FULL; INSERT INTO nopk_i VALUES (1), (2)`);
    const prefix = db.unique('i3');
    const source = await startSource({ tables: ['public.nopk_i'], slot: db.unique('slot'), publication: db.unique('pub'), topicPrefix: prefix, snapshot: false });
    expect(() => source.startSnapshot(['public.other'])).toThrow(expect.objectContaining({ code: 'CDC_TABLE_NOT_FOUND' }));
    expect(() => source.startSnapshot(['public.nopk_i'])).toThrow(expect.objectContaining({ code: 'CDC_SNAPSHOT_NO_PRIMARY_KEY' }));
    await expect(source.snapshotStatus('no-such-id')).rejects.toMatchObject({ code: 'CDC_SNAPSHOT_NOT_FOUND' });
    // The blocking mode reads it.
    await source.snapshot(['public.nopk_i'], { mode: 'blocking' });
    const events = await readTopic(engine, `${prefix}.public.nopk_i`);
    expect(events.map((e) => e.value.op)).toEqual(['t', 'r', 'r']);
    await stopSource(source);
    expect(() => source.startSnapshot(['public.nopk_i'])).toThrow(expect.objectContaining({ code: 'CDC_NOT_STREAMING' }));
  }, 60_000);
});
