/** The CDC source on the JetStream engine: the same exactly-once restart through the Engine seam. */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CdcSource, parseCdcSourceConfig } from '../../src/cdc/index.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { requireService, SERVICES } from '../helpers/services.js';
import { createTestDatabase, eventually, readTopic, type TestDatabase } from './pg.js';

const available = (await requireService('postgres')) && (await requireService('nats'));

describe.runIf(available)('CDC on the JetStream engine', () => {
  let db: TestDatabase;
  let engine: JetStreamEngine;
  const prefix = `BC${randomBytes(5).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase('brook_cdc_js');
    engine = new JetStreamEngine({ servers: `nats://127.0.0.1:${SERVICES.nats}`, prefix });
    await engine.open();
  });
  afterAll(async () => {
    await engine?.destroy();
    await engine?.close();
    await db?.drop();
  });

  it('snapshots, streams and resumes after a restart without a gap or a duplicate', async () => {
    await db.client.query(`CREATE TABLE js_t (id int PRIMARY KEY, v text); INSERT INTO js_t SELECT g, 'snap' FROM generate_series(1, 50) g`);
    const config = parseCdcSourceConfig({ url: db.url, tables: ['public.js_t'], slot: db.unique('slot'), publication: db.unique('pub'), heartbeatIntervalMs: 0 });
    const logger = pino({ level: 'silent' });
    let source = new CdcSource({ config, engine, logger });
    await source.start();
    await db.client.query(Array.from({ length: 50 }, (_, i) => `BEGIN; INSERT INTO js_t VALUES (${51 + i}, 'a'); COMMIT;`).join(' '));
    await eventually(async () => (await readTopic(engine, 'cdc.public.js_t')).length >= 100);
    await source.stop();
    await db.client.query(Array.from({ length: 50 }, (_, i) => `BEGIN; UPDATE js_t SET v = 'b' WHERE id = ${1 + i}; COMMIT;`).join(' '));
    source = new CdcSource({ config, engine, logger });
    await source.start();
    try {
      const events = await eventually(async () => {
        const e = await readTopic(engine, 'cdc.public.js_t');
        return e.length >= 150 ? e : null;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect((await readTopic(engine, 'cdc.public.js_t')).length).toBe(150);
      expect(events.map((e) => `${e.value.op}${e.value.after!['id'] as number}`)).toEqual([
        ...Array.from({ length: 50 }, (_, i) => `r${i + 1}`),
        ...Array.from({ length: 50 }, (_, i) => `c${51 + i}`),
        ...Array.from({ length: 50 }, (_, i) => `u${i + 1}`),
      ]);
    } finally {
      await source.stop();
    }
  });
});
