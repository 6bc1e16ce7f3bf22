/**
 * kill -9 of a Brook process at random moments during a sustained pgbench run; after a restart
 * the CDC topics must equal the database's change history exactly. The history is read from a
 * second ("reference") slot on the same publication, created before Brook's, and compared by
 * commit LSN, position in the transaction and row content.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { formatLsn, parseLsn } from '../../src/cdc/index.js';
import { TableSchema } from '../../src/cdc/envelope.js';
import { decodePgoutput, type Tuple } from '../../src/cdc/pgoutput-decoder.js';
import { requireService } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startChild, type RunningChild } from './child.js';
import { createTestDatabase, eventually, readTopic, type TestDatabase } from './pg.js';

const available = await requireService('postgres');
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers'];
const PK: Record<string, string> = { pgbench_accounts: 'aid', pgbench_branches: 'bid', pgbench_tellers: 'tid' };

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
  });
}

describe.runIf(available)('CDC exactly once across kill -9', () => {
  let db: TestDatabase;
  let dir: { path: string; remove: () => Promise<void> };
  let child: RunningChild | null = null;

  beforeAll(async () => {
    db = await createTestDatabase('brook_cdc_crash');
    dir = await tempDir('brook-cdc-crash-');
  });
  afterAll(async () => {
    if (child) await child.kill9();
    await db?.drop();
    await dir?.remove();
  });

  it('topics equal the history by LSN and content after random kills during pgbench', async () => {
    await run('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-i', '-s', '1', '-q', '-I', 'dtgp', db.name]);
    const publication = db.unique('pub');
    const slot = db.unique('slot');
    const refSlot = db.unique('ref');
    await db.client.query(`CREATE PUBLICATION ${publication} FOR TABLE ${TABLES.join(', ')}`);
    await db.client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [refSlot]);
    // Two partitions per table: the restart dedupe works per partition.
    const source = { url: db.url, tables: TABLES.map((t) => `public.${t}`), slot, publication, snapshot: false, heartbeatIntervalMs: 0, statusIntervalMs: 200, partitions: 2 };
    child = await startChild(dir.path, source);

    const bench = run('pgbench', ['-h', '127.0.0.1', '-U', 'postgres', '-n', '-c', '4', '-j', '2', '-T', '10', '-R', '600', db.name]);
    let benchDone = false;
    void bench.then(() => (benchDone = true), () => (benchDone = true));
    let kills = 0;
    while (!benchDone && kills < 5) {
      await new Promise((r) => setTimeout(r, 700 + Math.random() * 1500));
      if (benchDone) break;
      await child.kill9();
      kills++;
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      child = await startChild(dir.path, source);
    }
    await bench;
    expect(kills).toBeGreaterThanOrEqual(2);
    const end = (await db.client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    await eventually(async () => {
      const r = await db.client.query<{ ok: boolean }>(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [slot, end]);
      return r.rows[0]?.ok === true;
    }, 60_000, 'Brook to confirm the end of the run');
    expect(await child.stop()).toBe(0);
    child = null;

    // The history, from the reference slot.
    const ref = await db.client.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
      [refSlot, publication],
    );
    const schemas = new Map<number, TableSchema>();
    const expected = new Map<string, string[]>(TABLES.map((t) => [t, []]));
    const expectedTx: string[] = [];
    let lsn = 0n;
    let seq = 0;
    for (const { data } of ref.rows) {
      const m = decodePgoutput(data);
      const line = (schema: TableSchema, op: string, tuple: Tuple): void => {
        expected.get(schema.table)!.push(`${formatLsn(lsn)}|${seq++}|${op}|${JSON.stringify(schema.row(tuple))}`);
      };
      if (m.tag === 'begin') {
        lsn = m.commitLsn;
        seq = 0;
      } else if (m.tag === 'commit') {
        if (seq > 0) expectedTx.push(`${formatLsn(lsn)}|${seq}`);
      } else if (m.tag === 'relation') {
        schemas.set(m.oid, new TableSchema(m.oid, m.schema, m.table, '', m.replicaIdentity, m.columns, [PK[m.table]!], new Map()));
      } else if (m.tag === 'update') {
        line(schemas.get(m.relation)!, 'u', m.after);
      } else if (m.tag === 'insert') {
        line(schemas.get(m.relation)!, 'c', m.after);
      } else if (m.tag === 'delete') {
        line(schemas.get(m.relation)!, 'd', m.before);
      }
    }
    expect(expected.get('pgbench_accounts')!.length).toBeGreaterThan(1000);

    const engine = new EmbeddedEngine({ dataDir: dir.path });
    await engine.open();
    try {
      for (const table of TABLES) {
        const partitions = [await readTopic(engine, `cdc.public.${table}`, 0), await readTopic(engine, `cdc.public.${table}`, 1)];
        for (const events of partitions) {
          // Positions strictly increase along each partition: nothing appended twice, order kept.
          for (let i = 1; i < events.length; i++) {
            const [a, b] = [events[i - 1]!.headers, events[i]!.headers];
            const [la, lb] = [parseLsn(a['cdc-lsn']!), parseLsn(b['cdc-lsn']!)];
            expect(lb > la || (lb === la && Number(b['cdc-seq']) > Number(a['cdc-seq']))).toBe(true);
          }
        }
        const byPosition = partitions
          .flat()
          .map((e) => {
            expect(e.value.source.lsn).toBe(e.headers['cdc-lsn']);
            expect(String(e.value.source.seq)).toBe(e.headers['cdc-seq']);
            return { lsn: parseLsn(e.value.source.lsn), seq: e.value.source.seq!, line: `${e.value.source.lsn}|${e.value.source.seq}|${e.value.op}|${JSON.stringify(e.value.op === 'd' ? e.value.before : e.value.after)}` };
          })
          .sort((a, b) => (a.lsn === b.lsn ? a.seq - b.seq : a.lsn < b.lsn ? -1 : 1));
        const actual = byPosition.map((e) => e.line);
        expect(actual.length).toBe(expected.get(table)!.length);
        expect(actual).toEqual(expected.get(table));
      }
      const txs = (await readTopic(engine, 'cdc.transactions')).map((e) => {
        const v = e.value as unknown as { lsn: string; event_count: number };
        return `${v.lsn}|${v.event_count}`;
      });
      expect(txs).toEqual(expectedTx);
    } finally {
      await engine.close();
    }
  }, 180_000);
});
