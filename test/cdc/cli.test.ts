/** `brook start --cdc-url ...` and the config file's `cdc` list, as a real process. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';
import { runCli, startCli } from '../cli/run-cli.js';
import { createTestDatabase, eventually, type TestDatabase } from './pg.js';

const available = await requireService('postgres');

describe.runIf(available)('brook start with CDC', () => {
  let db: TestDatabase;
  let dir: { path: string; remove: () => Promise<void> };

  beforeAll(async () => {
    db = await createTestDatabase('brook_cdc_cli');
    dir = await tempDir('brook-cdc-cli-');
    await db.client.query(`CREATE TABLE orders (id int PRIMARY KEY, total numeric); CREATE TABLE users (id int PRIMARY KEY, name text)`);
  });
  afterAll(async () => {
    await db?.drop();
    await dir?.remove();
  });

  it('captures the flagged tables into topics served over HTTP, with metrics', async () => {
    await db.client.query(`INSERT INTO orders VALUES (1, 9.99)`);
    const cli = startCli([
      'start', '--port', '0', '--data', join(dir.path, 'a'), '--log-level', 'warn',
      '--cdc-url', db.url, '--cdc-tables', 'public.orders,public.users', '--cdc-slot', db.unique('slot'), '--cdc-publication', db.unique('pub'),
    ]);
    try {
      const line = await cli.waitForLine(/listening on/);
      const url = /listening on (http:\/\/\S+)/.exec(line)![1]!;
      await db.client.query(`INSERT INTO users VALUES (7, 'ada'); UPDATE orders SET total = 10.01 WHERE id = 1`);
      const records = await eventually(async () => {
        const res = await fetch(`${url}/v1/topics/cdc.public.orders/partitions/0/records?offset=0`);
        if (res.status !== 200) return null;
        const body = (await res.json()) as { records: Array<{ value: { op: string; after: { total: string } } }> };
        return body.records.length >= 2 ? body.records : null;
      });
      expect(records.map((r) => [r.value.op, r.value.after.total])).toEqual([
        ['r', '9.99'],
        ['u', '10.01'],
      ]);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/brook_cdc_events_total\{source="[^"]+",op="u"\} 1/);
      expect(metrics).toMatch(/brook_cdc_confirmed_lsn\{source="[^"]+"\} [1-9]/);
      expect(metrics).toMatch(/brook_cdc_slot_lag_bytes\{source="[^"]+"\} \d+/);
      // One captured transaction (the INSERT and UPDATE commit together) became durable.
      expect(metrics).toMatch(/brook_cdc_commit_to_durable_seconds_count\{source="[^"]+"\} 1\n/);
      expect(metrics).toMatch(/brook_cdc_receive_to_durable_seconds_count\{source="[^"]+"\} 1\n/);
    } finally {
      cli.child.kill('SIGTERM');
      expect((await cli.exited()).code).toBe(0);
    }
  });

  it('refuses to start with a clear error for a table that cannot be captured', async () => {
    await db.client.query(`CREATE TABLE logs (line text)`);
    const result = await runCli(['start', '--port', '0', '--data', join(dir.path, 'b'), '--log-level', 'silent', '--cdc-url', db.url, '--cdc-tables', 'public.logs', '--cdc-slot', db.unique('slot'), '--cdc-publication', db.unique('pub')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/public\.logs has no primary key/);
  });

  it('runs several sources from the config file and refuses two sharing topics', async () => {
    const config = join(dir.path, 'brook.json');
    const source = (name: string, table: string, prefix: string): Record<string, unknown> => ({ name, url: db.url, tables: [table], slot: db.unique('slot'), publication: db.unique('pub'), topicPrefix: prefix });
    await writeFile(config, JSON.stringify({ cdc: [source('a', 'public.orders', 'x'), source('b', 'public.orders', 'x')] }));
    const refused = await runCli(['start', '--port', '0', '--data', join(dir.path, 'c'), '--config', config]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/share the topic prefix/);

    await writeFile(config, JSON.stringify({ cdc: [source('a', 'public.orders', 'one'), source('b', 'public.users', 'two')] }));
    const cli = startCli(['start', '--port', '0', '--data', join(dir.path, 'd'), '--log-level', 'warn', '--config', config]);
    try {
      const url = /listening on (http:\/\/\S+)/.exec(await cli.waitForLine(/listening on/))![1]!;
      await db.client.query(`INSERT INTO users VALUES (8, 'bob')`);
      await eventually(async () => {
        const res = await fetch(`${url}/v1/topics/two.public.users/partitions/0/records?offset=0`);
        if (res.status !== 200) return null;
        const body = (await res.json()) as { records: Array<{ value: { after: { id: number } } }> };
        return body.records.some((r) => r.value.after.id === 8);
      });
      const topics = (await (await fetch(`${url}/v1/topics`)).json()) as { topics: Array<{ name: string }> };
      expect(topics.topics.map((t) => t.name)).toEqual(expect.arrayContaining(['one.public.orders', 'two.public.users', 'one.transactions', 'two.transactions']));
    } finally {
      cli.child.kill('SIGTERM');
      expect((await cli.exited()).code).toBe(0);
    }
  });
});
