/** `/v1/admin/cdc`: status of every source, snapshots started and followed over HTTP, and their errors. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CdcSource, parseCdcSourceConfig } from '../../src/cdc/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { createServer, type BrookServer } from '../../src/server/index.js';
import { createTestDatabase, eventually, readTopic, type TestDatabase } from '../cdc/pg.js';
import { requireService } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';
import { call, codeOf } from './setup.js';
import { bearer, hs256, SECRET } from './tokens.js';

const available = await requireService('postgres');
const logger = pino({ level: 'silent' });

describe.runIf(available)('CDC admin over HTTP', () => {
  let db: TestDatabase;
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  let source: CdcSource;
  let idle: CdcSource;
  let server: BrookServer;
  let admin: Record<string, string>;
  let reader: Record<string, string>;
  let prefix: string;

  beforeAll(async () => {
    db = await createTestDatabase('brook_cdc_http');
    dir = await tempDir('brook-cdc-http-');
    engine = new EmbeddedEngine({ dataDir: dir.path });
    await engine.open();
    await db.client.query(`CREATE TABLE http_t (id int PRIMARY KEY, v text); INSERT INTO http_t SELECT g, 'x' || g FROM generate_series(1, 1200) g;
      CREATE TABLE other_t (id int PRIMARY KEY)`);
    prefix = db.unique('h');
    const slot = db.unique('slot');
    source = new CdcSource({
      config: parseCdcSourceConfig({ name: 'app', url: db.url, tables: ['public.http_t'], slot, publication: db.unique('pub'), topicPrefix: prefix, snapshot: false, snapshotChunkRows: 250, heartbeatIntervalMs: 0, lagIntervalMs: 100 }),
      engine,
      logger,
    });
    // Never started: listed as idle, refuses snapshots.
    idle = new CdcSource({ config: parseCdcSourceConfig({ name: 'later', url: db.url, tables: ['public.other_t'], slot: db.unique('slot'), publication: db.unique('pub'), topicPrefix: db.unique('h') }), engine, logger });
    server = await createServer({ engine, host: '127.0.0.1', port: 0, logger, auth: { secret: SECRET }, cdc: [source, idle] });
    await source.start();
    admin = bearer(await hs256({ sub: 'ops', admin: true }));
    reader = bearer(await hs256({ sub: 'app', permissions: [{ topics: '*', actions: ['read', 'write'] }] }));
  });
  afterAll(async () => {
    await source?.stop();
    await server?.close();
    await engine?.close();
    await db?.drop();
    await dir?.remove();
  });

  it('lists every source with its slot, tables, confirmed LSN and slot lag', async () => {
    const answer = await eventually(async () => {
      const a = await call(server.url, 'GET', '/v1/admin/cdc', undefined, admin);
      const first = (a.body as { sources: Array<{ slot_lag_bytes: number | null }> }).sources[0];
      return first?.slot_lag_bytes !== null ? a : null;
    }, 10_000, 'the first slot lag reading');
    expect(answer.status).toBe(200);
    const { sources } = answer.body as { sources: Array<Record<string, unknown>> };
    expect(sources.map((s) => s['name'])).toEqual(['app', 'later']);
    expect(sources[0]).toMatchObject({ state: 'streaming', slot: source.status().slot, publication: source.status().publication, tables: ['public.http_t'], last_error: null, snapshot: null });
    expect(sources[0]!['confirmed_lsn']).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(typeof sources[0]!['slot_lag_bytes']).toBe('number');
    expect(sources[1]).toMatchObject({ name: 'later', state: 'idle', confirmed_lsn: null });
    const one = await call(server.url, 'GET', '/v1/admin/cdc/app', undefined, admin);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ name: 'app', state: 'streaming' });
  });

  it('starts an incremental snapshot and reports its progress until complete', async () => {
    const started = await call(server.url, 'POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.http_t'] }, admin);
    expect(started.status).toBe(202);
    const body = started.body as { id: string; mode: string; state: string };
    expect(body).toMatchObject({ mode: 'incremental', state: 'running', tables: [{ table: 'public.http_t', chunks: 0, rows: 0, done: false }] });
    expect(started.headers.get('location')).toBe(`/v1/admin/cdc/app/snapshots/${body.id}`);
    const done = await eventually(async () => {
      const a = await call(server.url, 'GET', `/v1/admin/cdc/app/snapshots/${body.id}`, undefined, admin);
      expect(a.status).toBe(200);
      return (a.body as { state: string }).state === 'complete' ? a.body : null;
    }, 60_000, 'the snapshot to complete');
    // 1,200 rows in chunks of 250, no concurrent writes: every row from the snapshot.
    expect(done).toMatchObject({ id: body.id, state: 'complete', table: null, chunks: 5, rows: 1200, tables: [{ table: 'public.http_t', chunks: 5, rows: 1200, done: true }], error: null });
    const events = await readTopic(engine, `${prefix}.public.http_t`);
    expect(events.filter((e) => e.value.op === 'r')).toHaveLength(1200);
    // The blocking mode on request.
    const blocking = await call(server.url, 'POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.http_t'], mode: 'blocking' }, admin);
    expect(blocking.status).toBe(202);
    expect(blocking.body).toMatchObject({ mode: 'blocking' });
    const id = (blocking.body as { id: string }).id;
    await eventually(async () => ((await call(server.url, 'GET', `/v1/admin/cdc/app/snapshots/${id}`, undefined, admin)).body as { state: string }).state === 'complete', 60_000, 'the blocking snapshot');
  });

  it('answers 401 without a token and 403 without admin, before looking anything up', async () => {
    for (const [method, path] of [
      ['GET', '/v1/admin/cdc'],
      ['GET', '/v1/admin/cdc/app'],
      ['POST', '/v1/admin/cdc/app/snapshots'],
      ['GET', '/v1/admin/cdc/nope/snapshots/x'],
    ] as const) {
      const body = method === 'POST' ? { tables: ['public.http_t'] } : undefined;
      const anonymous = await call(server.url, method, path, body);
      expect([path, anonymous.status, codeOf(anonymous)]).toEqual([path, 401, 'UNAUTHORIZED']);
      const forbidden = await call(server.url, method, path, body, reader);
      expect([path, forbidden.status, codeOf(forbidden)]).toEqual([path, 403, 'FORBIDDEN']);
    }
  });

  it('refuses unknown sources, tables and snapshots, and bad bodies, with stable codes', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['GET', '/v1/admin/cdc/nope', undefined, 404, 'CDC_SOURCE_NOT_FOUND'],
      ['POST', '/v1/admin/cdc/nope/snapshots', { tables: ['public.http_t'] }, 404, 'CDC_SOURCE_NOT_FOUND'],
      ['GET', '/v1/admin/cdc/app/snapshots/no-such-id', undefined, 404, 'CDC_SNAPSHOT_NOT_FOUND'],
      ['POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.other_t'] }, 404, 'CDC_TABLE_NOT_FOUND'],
      ['POST', '/v1/admin/cdc/app/snapshots', {}, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/admin/cdc/app/snapshots', { tables: [] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/admin/cdc/app/snapshots', { tables: ['http_t'] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.http_t'], mode: 'fast' }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.http_t'], extra: 1 }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/admin/cdc/app/snapshots', '{"tables":', 400, 'INVALID_JSON'],
      ['POST', '/v1/admin/cdc/later/snapshots', { tables: ['public.other_t'] }, 503, 'CDC_NOT_STREAMING'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const a = await call(server.url, method, path, body, admin);
      expect([path, body, a.status, codeOf(a)]).toEqual([path, body, status, code]);
    }
    const fresh = await call(server.url, 'GET', '/v1/admin/cdc/app', undefined, admin);
    expect((fresh.body as { snapshot: unknown }).snapshot).toBeNull();
  });

  it('refuses a second snapshot while one runs', async () => {
    await db.client.query(`INSERT INTO http_t SELECT g, 'y' FROM generate_series(1201, 20000) g`);
    const first = await call(server.url, 'POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.http_t'] }, admin);
    expect(first.status).toBe(202);
    const second = await call(server.url, 'POST', '/v1/admin/cdc/app/snapshots', { tables: ['public.http_t'] }, admin);
    // 80 chunks of 250 rows, each waiting for its watermarks to come back through the stream: still running.
    expect([second.status, codeOf(second)]).toEqual([409, 'CDC_SNAPSHOT_IN_PROGRESS']);
    const status = await call(server.url, 'GET', '/v1/admin/cdc/app', undefined, admin);
    expect((status.body as { snapshot: { id: string } }).snapshot.id).toBe((first.body as { id: string }).id);
    await eventually(async () => ((await call(server.url, 'GET', '/v1/admin/cdc/app', undefined, admin)).body as { snapshot: unknown }).snapshot === null, 60_000, 'the snapshot to finish');
  });
});
