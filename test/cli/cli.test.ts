import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';
import { call, setup, type TestServer } from '../server/setup.js';
import { runCli, startCli } from './run-cli.js';

interface Line {
  partition: number;
  offset: number;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
  timestamp: number;
}

const lines = (stdout: string): Line[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);

describe('brook CLI', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('produces one record per stdin line, in batches', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'cli-in', partitions: 1 });
    const input: string[] = [];
    for (let i = 0; i < 1200; i++) input.push(i % 3 === 0 ? `plain line ${i}` : JSON.stringify({ i, user: `u${i % 7}` }));
    input.splice(10, 0, '', '   ');
    const result = await runCli(['produce', 'cli-in', '--url', t.url, '--key-field', 'user'], `${input.join('\r\n')}\n`);
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });

    const read: unknown[] = [];
    const keys: (string | null)[] = [];
    let offset = 0;
    for (;;) {
      const r = await t.engine.read('cli-in', 0, offset, { maxRecords: 1000 });
      for (const rec of r.records) {
        read.push(JSON.parse(Buffer.from(rec.value!).toString('utf8')));
        keys.push(rec.key && Buffer.from(rec.key).toString('utf8'));
      }
      if (r.nextOffset === r.highWatermark) break;
      offset = r.nextOffset;
    }
    expect(read).toHaveLength(1200);
    expect(read[0]).toBe('plain line 0');
    expect(read[1]).toEqual({ i: 1, user: 'u1' });
    expect(keys[0]).toBeNull();
    expect(keys[1]).toBe('u1');
  });

  it('fails with a non-zero status and the server error', async () => {
    const strict = await setup({ autoCreateTopics: false });
    try {
      const result = await runCli(['produce', 'missing', '--url', strict.url], '{"a":1}\n');
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('TOPIC_NOT_FOUND');
      expect(result.stdout).toBe('');
    } finally {
      await strict.cleanup();
    }
    const unreachable = await runCli(['produce', 'x', '--url', 'http://127.0.0.1:1'], 'a\n');
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr).toContain('cannot reach Brook');
  });

  it('consumes every partition from the beginning up to --max', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'cli-out', partitions: 3 });
    const records = Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: { i }, headers: { n: String(i) } }));
    await call(t.url, 'POST', '/v1/topics/cli-out/records', { records });

    const all = await runCli(['consume', 'cli-out', '--url', t.url, '--from-beginning', '--max', '30']);
    expect(all.code).toBe(0);
    const printed = lines(all.stdout);
    expect(printed).toHaveLength(30);
    expect(printed.map((l) => (l.value as { i: number }).i).sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
    expect(Object.keys(printed[0]!)).toEqual(['partition', 'offset', 'key', 'value', 'headers', 'timestamp']);
    for (const l of printed) expect(l.headers).toEqual({ n: String((l.value as { i: number }).i) });

    const some = await runCli(['consume', 'cli-out', '--url', t.url, '--from-beginning', '--max', '7']);
    expect(lines(some.stdout)).toHaveLength(7);

    const one = await runCli(['consume', 'cli-out', '--url', t.url, '--from-beginning', '--partition', '1', '--max', '1']);
    expect(lines(one.stdout)).toEqual([expect.objectContaining({ partition: 1, offset: 0 })]);
  });

  it('resumes from and commits to a group', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'cli-group', partitions: 1 });
    await call(t.url, 'POST', '/v1/topics/cli-group/records', { records: Array.from({ length: 10 }, (_, i) => ({ value: i })) });
    const args = ['consume', 'cli-group', '--url', t.url, '--from-beginning', '--group', 'cli-g', '--max', '4'];
    const first = await runCli(args);
    expect(lines(first.stdout).map((l) => l.value)).toEqual([0, 1, 2, 3]);
    const second = await runCli(args);
    expect(lines(second.stdout).map((l) => l.value)).toEqual([4, 5, 6, 7]);
    const committed = await call(t.url, 'GET', '/v1/groups/cli-g/offsets?topic=cli-group');
    expect(committed.body).toMatchObject({ offsets: [{ topic: 'cli-group', partition: 0, offset: 8 }] });
  });

  it('starts at the latest offset and follows new records', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'cli-follow', partitions: 2 });
    await call(t.url, 'POST', '/v1/topics/cli-follow/records', { records: [{ value: 'old' }] });
    const consumer = startCli(['consume', 'cli-follow', '--url', t.url, '--max', '2']);
    // Keep producing until the consumer has seen two records: no assumption about when it began polling.
    const done = consumer.exited();
    let finished = false;
    void done.then(() => (finished = true));
    for (let i = 0; !finished && i < 600; i++) {
      await call(t.url, 'POST', '/v1/topics/cli-follow/records', { records: [{ value: 'new' }] });
      await new Promise((r) => setTimeout(r, 50));
    }
    const result = await done;
    expect(result.code).toBe(0);
    expect(lines(result.stdout).map((l) => l.value)).toEqual(['new', 'new']);
  });

  it('stops consuming on SIGINT with status 0', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'cli-sigint' });
    await call(t.url, 'POST', '/v1/topics/cli-sigint/records', { records: [{ value: 'only' }] });
    const consumer = startCli(['consume', 'cli-sigint', '--url', t.url, '--from-beginning']);
    await consumer.waitForLine(/"only"/);
    consumer.child.kill('SIGINT');
    const result = await consumer.exited();
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toHaveLength(1);
  });

  it('administers topics', async () => {
    const created = await runCli(['topics', 'create', 'cli-admin', '--url', t.url, '--partitions', '2', '--config', 'retention_ms=60000']);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'cli-admin', config: { partitions: 2, retention_ms: 60000 } });
    const listed = await runCli(['topics', 'list', '--url', t.url]);
    expect(listed.stdout).toContain('cli-admin\t2 partitions');
    const described = await runCli(['topics', 'describe', 'cli-admin', '--url', t.url]);
    expect(JSON.parse(described.stdout)).toMatchObject({ name: 'cli-admin', partitions: [{ partition: 0 }, { partition: 1 }] });
    expect((await runCli(['topics', 'delete', 'cli-admin', '--url', t.url])).code).toBe(0);
    const gone = await runCli(['topics', 'describe', 'cli-admin', '--url', t.url]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('TOPIC_NOT_FOUND');
  });
});

describe('brook start', () => {
  it('serves until SIGTERM, then shuts down cleanly with status 0', async () => {
    const dir = await tempDir('brook-cli-start-');
    try {
      const server = startCli(['start', '--port', '0', '--data', dir.path, '--log-level', 'warn']);
      const line = await server.waitForLine(/^brook listening on /);
      expect(line).toContain(`(data: ${dir.path})`);
      const url = /(http:\/\/\S+)/.exec(line)![1]!;
      expect((await call(url, 'GET', '/healthz')).body).toEqual({ status: 'ok' });
      expect((await call(url, 'POST', '/v1/topics/started/records', { records: [{ value: 1 }] })).status).toBe(200);

      // A second server on the same data directory is refused (the directory is locked).
      const second = await runCli(['start', '--port', '0', '--data', dir.path]);
      expect(second.code).not.toBe(0);

      server.child.kill('SIGTERM');
      const result = await server.exited();
      expect(result.code).toBe(0);
    } finally {
      await dir.remove();
    }
  });

  it('refuses flags that are malformed or have no meaning on its engine, before opening anything', async () => {
    const cases: [string[], RegExp][] = [
      [['--presence-ttl-ms', '0'], /presence TTL must be at least 1/],
      [['--presence-ttl-ms', '-5'], /presence TTL must be a non-negative integer/],
      [['--presence-ttl-ms', '5000'], /--presence-ttl-ms needs --channels-cluster/],
      [['--group-takeover-delay-ms', 'soon'], /group takeover delay must be a non-negative integer/],
      [['--group-takeover-delay-ms', '0'], /--group-takeover-delay-ms needs --engine jetstream/],
      [['--heap-headroom-mb', 'lots'], /heap headroom must be a non-negative integer/],
    ];
    for (const [flags, message] of cases) {
      const result = await runCli(['start', '--port', '0', '--data', '/nonexistent/brook-never-created', ...flags]);
      expect(result.code, flags.join(' ')).not.toBe(0);
      expect(result.stderr, flags.join(' ')).toMatch(message);
    }
  });
});
