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
      // The confirm to PostgreSQL follows the records' visibility (the transactions topic lingers
      // up to transactionsLingerMs first, docs/cdc.md), so the LSN may still be 0 for a moment.
      const metrics = await eventually(
        async () => {
          const text = await (await fetch(`${url}/metrics`)).text();
          return /brook_cdc_confirmed_lsn\{source="[^"]+"\} [1-9]/.test(text) ? text : null;
        },
        20_000,
        'the confirmed LSN on /metrics',
      );
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

  it('brook cdc status and brook cdc snapshot --wait against a running server', async () => {
    await db.client.query(`CREATE TABLE items (id int PRIMARY KEY, n int); INSERT INTO items SELECT g, g FROM generate_series(1, 3000) g`);
    const slot = db.unique('slot');
    const cli = startCli([
      'start', '--port', '0', '--data', join(dir.path, 'e'), '--log-level', 'warn',
      '--cdc-url', db.url, '--cdc-tables', 'public.items', '--cdc-slot', slot, '--cdc-publication', db.unique('pub'), '--cdc-topic-prefix', 'e',
    ]);
    try {
      const url = /listening on (http:\/\/\S+)/.exec(await cli.waitForLine(/listening on/))![1]!;
      const status = await runCli(['cdc', 'status', '--url', url]);
      expect(status.code).toBe(0);
      const [header, row] = status.stdout.trim().split('\n');
      expect(header).toMatch(/^SOURCE\s+STATE\s+SLOT\s+CONFIRMED-LSN\s+LAG-BYTES\s+SNAPSHOT\s+LAST-ERROR$/);
      expect(row).toMatch(new RegExp(`^${slot}\\s+streaming\\s+${slot}\\s+[0-9A-F]+/[0-9A-F]+\\s`));
      const one = await runCli(['cdc', 'status', slot, '--url', url]);
      expect(one.stdout).toMatch(/state streaming/);
      expect(one.stdout).toMatch(/tables public\.items/);

      const snap = await runCli(['cdc', 'snapshot', slot, 'public.items', '--wait', '--url', url], '', 60_000);
      expect([snap.code, snap.stderr]).toEqual([0, '']);
      expect(snap.stdout).toMatch(/^snapshot \S+ started \(incremental\): public\.items$/m);
      // The initial snapshot already appended the 3,000 rows once; the incremental one appends them again.
      expect(snap.stdout).toMatch(/^snapshot \S+ incremental complete: 3000 rows in 1 chunks$/m);
      // --wait returned once the rows were durable: all 6,000 are readable now.
      const records: Array<{ value: { source: { snapshot: unknown } } }> = [];
      while (records.length < 6000) {
        const res = await fetch(`${url}/v1/topics/e.public.items/partitions/0/records?offset=${records.length}&max=1000`);
        const page = ((await res.json()) as { records: typeof records }).records;
        expect(page.length).toBeGreaterThan(0);
        records.push(...page);
      }
      expect(records.filter((r) => r.value.source.snapshot === 'incremental')).toHaveLength(3000);

      const unknown = await runCli(['cdc', 'snapshot', 'nope', 'public.items', '--url', url]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toMatch(/CDC_SOURCE_NOT_FOUND/);
      const notCaptured = await runCli(['cdc', 'snapshot', slot, 'public.users', '--url', url]);
      expect(notCaptured.code).toBe(1);
      expect(notCaptured.stderr).toMatch(/CDC_TABLE_NOT_FOUND: table public\.users is not captured/);
      const badMode = await runCli(['cdc', 'snapshot', slot, 'public.items', '--mode', 'fast', '--url', url]);
      expect(badMode.code).toBe(1);
      expect(badMode.stderr).toMatch(/Allowed choices are incremental, blocking/);
      const help = await runCli(['cdc', 'snapshot', '--help']);
      expect(help.stdout).toMatch(/--mode <mode>/);
      expect(help.stdout).toMatch(/--wait/);
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
