import { pino } from 'pino';
import pg from 'pg';
import { EmbeddedEngine } from '../src/engine/embedded/index.js';
import { CdcSource, parseCdcSourceConfig } from '../src/cdc/index.js';
import { mkdtempSync } from 'node:fs';

const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
await admin.connect();
await admin.query('DROP DATABASE IF EXISTS cdc_smoke (FORCE)');
await admin.query('CREATE DATABASE cdc_smoke');
await admin.end();
const url = 'postgres://postgres@127.0.0.1:5432/cdc_smoke';
const db = new pg.Client({ connectionString: url });
await db.connect();
await db.query(`CREATE TYPE mood AS ENUM ('sad','happy'); CREATE TABLE t (id bigint primary key, n numeric, ts timestamptz, d date, b bytea, arr int[], j jsonb, u uuid, m mood, ms mood[], big text, f float8)`);
await db.query(`INSERT INTO t VALUES (1, 12345678901234567890.123, '2024-05-01 12:00:00.123456+02', '2024-05-01', '\\x0102', '{1,2,NULL}', '{"a":[1,2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', '{sad,happy}', repeat('x', 100000), 'NaN')`);
const engine = new EmbeddedEngine({ dataDir: mkdtempSync('/tmp/cdcdev/e-') });
await engine.open();
const logger = pino({ level: 'info' });
const source = new CdcSource({ config: parseCdcSourceConfig({ url, tables: ['public.t'], slot: 'smoke_slot', publication: 'smoke_pub' }), engine, logger });
await source.start();
await db.query(`UPDATE t SET f = 1.5 WHERE id = 1`);
await db.query(`BEGIN; INSERT INTO t (id) VALUES (2); UPDATE t SET id = 3 WHERE id = 2; DELETE FROM t WHERE id = 3; COMMIT`);
await db.query(`TRUNCATE t`);
await new Promise((r) => setTimeout(r, 1000));
for (const topic of ['cdc.public.t', 'cdc.transactions', 'cdc.snapshot-progress']) {
  const r = await engine.read(topic, 0, 0, { maxRecords: 100 });
  for (const rec of r.records) console.log(topic, JSON.stringify(rec.headers), rec.key ? Buffer.from(rec.key).toString() : null, Buffer.from(rec.value!).toString().slice(0, 600));
}
console.log(source.status());
await source.stop();
await engine.close();
await db.query(`SELECT pg_drop_replication_slot('smoke_slot')`);
await db.end();
