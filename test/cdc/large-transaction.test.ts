/**
 * A 1,000,000-row transaction flows through a Brook process with bounded memory: the child's peak
 * RSS stays far below the transaction's size in the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { requireService } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startChild, type RunningChild } from './child.js';
import { createTestDatabase, eventually, type TestDatabase } from './pg.js';

const available = await requireService('postgres');
const ROWS = Number(process.env.CDC_BIG_ROWS ?? 1_000_000);
/** The child's V8 heap limit: far below the transaction's events, so buffering them would crash it. */
const HEAP_LIMIT_MIB = 128;

describe.runIf(available)('CDC large transaction', () => {
  let db: TestDatabase;
  let dir: { path: string; remove: () => Promise<void> };
  let child: RunningChild | null = null;

  beforeAll(async () => {
    db = await createTestDatabase('brook_cdc_big');
    dir = await tempDir('brook-cdc-big-');
  });
  afterAll(async () => {
    if (child) await child.kill9();
    await db?.drop();
    await dir?.remove();
  });

  it(`streams a ${ROWS}-row transaction with bounded memory`, async () => {
    await db.client.query(`CREATE TABLE big_t (id int PRIMARY KEY, v text)`);
    const slot = db.unique('slot');
    child = await startChild(dir.path, {
      url: db.url,
      tables: ['public.big_t'],
      slot,
      publication: db.unique('pub'),
      snapshot: false,
      heartbeatIntervalMs: 0,
      maxBufferedBytes: 16 * 1024 * 1024,
    }, [`--max-old-space-size=${HEAP_LIMIT_MIB}`]);
    const baseline = await child.peakRss();
    // A quarter-size transaction first: if memory were proportional to the transaction, the
    // full-size one would raise the peak by ~3x as much again.
    const runTransaction = async (from: number, to: number): Promise<number> => {
      await db.client.query(`INSERT INTO big_t SELECT g, md5(g::text) FROM generate_series(${from}, ${to}) g`);
      const end = (await db.client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
      let peak = 0;
      await eventually(async () => {
        peak = Math.max(peak, await child!.peakRss());
        const r = await db.client.query<{ ok: boolean }>(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [slot, end]);
        return r.rows[0]?.ok === true;
      }, 240_000, 'the transaction to be confirmed');
      return Math.max(peak, await child!.peakRss());
    };
    const quarterPeak = await runTransaction(1, ROWS / 4);
    const peak = await runTransaction(ROWS / 4 + 1, ROWS / 4 + ROWS);
    expect(await child.stop()).toBe(0);
    child = null;

    const engine = new EmbeddedEngine({ dataDir: dir.path });
    await engine.open();
    let logBytes = 0;
    try {
      const { highWatermark } = await engine.watermarks('cdc.public.big_t', 0);
      expect(highWatermark).toBe(ROWS + ROWS / 4);
      const first = await engine.read('cdc.public.big_t', 0, 0, { maxRecords: 1 });
      logBytes = first.records[0]!.value!.length * ROWS;
      const last = await engine.read('cdc.public.big_t', 0, ROWS + ROWS / 4 - 1, { maxRecords: 1 });
      expect(JSON.parse(Buffer.from(last.records[0]!.value!).toString()).after.id).toBe(ROWS + ROWS / 4);
    } finally {
      await engine.close();
    }
    const mib = (n: number): number => Math.round(n / 2 ** 20);
    process.stderr.write(
      `large transaction: ${ROWS} rows, ~${mib(logBytes)} MiB of events; child peak RSS ${mib(peak)} MiB ` +
        `(after a ${ROWS / 4}-row transaction ${mib(quarterPeak)} MiB, idle ${mib(baseline)} MiB)\n`,
    );
    // Bounded: the child ran with a heap limit of half the events' size and did not crash, and
    // four times the transaction did not raise its peak by anything like the extra events (~200 MiB).
    expect(logBytes).toBeGreaterThan(2 * HEAP_LIMIT_MIB * 2 ** 20);
    expect(peak - quarterPeak).toBeLessThan(64 * 2 ** 20);
  }, 300_000);
});
