/**
 * PostgreSQL helpers for the CDC tests: a database of their own per test file (so files run
 * concurrently), dropped with its replication slots afterwards so no WAL stays held.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Engine } from '../../src/engine/index.js';

export const PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A connected client on the database. */
  readonly client: pg.Client;
  /** Unique names for slots and publications. */
  unique(prefix: string): string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'brook_cdc'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // DROP DATABASE ... (FORCE) ends it; queries report their own errors
  await client.connect();
  let n = 0;
  return {
    name,
    url,
    client,
    unique: (p) => `${p}_${name.slice(-8)}_${n++}`,
    async drop() {
      await client.end().catch(() => undefined);
      await dropDatabase(name);
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  // Slots hold WAL for the whole cluster and block DROP DATABASE; terminate their users first.
  await adminQuery(
    `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
    [name],
  );
  for (let i = 0; i < 50; i++) {
    try {
      await adminQuery(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [name]);
      break;
    } catch {
      // A terminated walsender may still hold its slot for a moment.
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await c.query<R>(sql, params);
  } finally {
    await c.end();
  }
}

export interface TopicEvent {
  readonly offset: number;
  readonly key: string | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly value: {
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
    op: string;
    source: { lsn: string; txId: number | null; seq: number | null; snapshot: boolean | string; table: string };
    unchanged_toast?: string[];
  };
}

/** Every record of one partition, parsed. */
export async function readTopic(engine: Engine, topic: string, partition = 0): Promise<TopicEvent[]> {
  const out: TopicEvent[] = [];
  let offset = 0;
  for (;;) {
    const { highWatermark } = await engine.watermarks(topic, partition);
    if (offset >= highWatermark) return out;
    const r = await engine.read(topic, partition, offset, { maxRecords: 5000, maxBytes: 8 * 1024 * 1024 });
    for (const rec of r.records) {
      out.push({
        offset: rec.offset,
        key: rec.key ? Buffer.from(rec.key).toString() : null,
        headers: rec.headers,
        value: JSON.parse(Buffer.from(rec.value!).toString()) as TopicEvent['value'],
      });
    }
    offset = r.nextOffset;
  }
}

/** Polls `check` every 50 ms until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(check: () => Promise<T | null | undefined | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
