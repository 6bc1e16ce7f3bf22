import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, setup, type TestServer } from '../server/setup.js';
import { bearer, hs256, SECRET } from '../server/tokens.js';
import { runCli } from './run-cli.js';

/** The rows of the table under the header starting with `first`, split into cells. */
function table(stdout: string, first: string): string[][] {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`${first} `));
  expect(start, stdout).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    rows.push(line.trim().split(/\s{2,}/));
  }
  return rows;
}

describe('brook groups', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
    await call(t.url, 'POST', '/v1/topics', { name: 'gl', partitions: 3 });
    for (const [partition, count] of [[0, 10], [1, 4], [2, 1]] as const) {
      await call(t.url, 'POST', '/v1/topics/gl/records', { partition, records: Array.from({ length: count }, (_, i) => ({ value: i })) });
    }
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('lists groups and describes lag per partition', async () => {
    await call(t.url, 'POST', '/v1/groups/gl-billing/offsets', {
      offsets: [
        { topic: 'gl', partition: 0, offset: 3 },
        { topic: 'gl', partition: 1, offset: 4 },
      ],
    });
    const listed = await runCli(['groups', 'list', '--url', t.url]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')).toContain('gl-billing');

    const described = await runCli(['groups', 'describe', 'gl-billing', '--url', t.url]);
    expect(described).toMatchObject({ code: 0, stderr: '' });
    expect(described.stdout).toContain('group gl-billing  generation 0');
    expect(table(described.stdout, 'TOPIC')).toEqual([
      ['gl', '0', '3', '10', '7', '-'],
      ['gl', '1', '4', '4', '0', '-'],
    ]);

    const json = await runCli(['groups', 'describe', 'gl-billing', '--url', t.url, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ offsets: [{ partition: 0, lag: 7 }, { partition: 1, lag: 0 }] });
  });

  it('shows members and their assignment next to the lag', async () => {
    await call(t.url, 'POST', '/v1/groups/gl-live/offsets', { offsets: [{ topic: 'gl', partition: 2, offset: 0 }] });
    const joined = (
      await call(t.url, 'POST', '/v1/groups/gl-live/members', { topics: ['gl'], client_id: 'worker-1', session_timeout_ms: 60_000 })
    ).body as { member_id: string };
    try {
      const described = await runCli(['groups', 'describe', 'gl-live', '--url', t.url]);
      expect(described.code).toBe(0);
      expect(table(described.stdout, 'MEMBER')).toEqual([[joined.member_id, 'worker-1', 'gl', 'gl/0,gl/1,gl/2']]);
      expect(table(described.stdout, 'TOPIC')).toEqual([
        ['gl', '0', '-', '-', '-', joined.member_id],
        ['gl', '1', '-', '-', '-', joined.member_id],
        ['gl', '2', '0', '1', '1', joined.member_id],
      ]);

      const refused = await runCli(['groups', 'reset', 'gl-live', '--url', t.url, '--topic', 'gl', '--to', 'earliest']);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('GROUP_NOT_EMPTY');
      expect(refused.stderr).toContain(joined.member_id);
    } finally {
      await call(t.url, 'DELETE', `/v1/groups/gl-live/members/${joined.member_id}`);
    }
    const reset = await runCli(['groups', 'reset', 'gl-live', '--url', t.url, '--topic', 'gl', '--to', 'latest']);
    expect(reset.code).toBe(0);
  });

  it('resets to earliest, latest, an offset and a timestamp', async () => {
    const reset = async (...args: string[]): Promise<string[][]> => {
      const result = await runCli(['groups', 'reset', 'gl-reset', '--url', t.url, '--topic', 'gl', ...args]);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      return table(result.stdout, 'TOPIC');
    };
    expect(await reset('--to', 'latest')).toEqual([
      ['gl', '0', '10'],
      ['gl', '1', '4'],
      ['gl', '2', '1'],
    ]);
    expect(await reset('--to', 'earliest', '--partition', '1')).toEqual([['gl', '1', '0']]);
    expect(await reset('--to', 'offset:6')).toEqual([
      ['gl', '0', '6'],
      ['gl', '1', '4'],
      ['gl', '2', '1'],
    ]);
    expect(await reset('--to', 'timestamp:0', '--partition', '0')).toEqual([['gl', '0', '0']]);
    expect(await reset('--to', 'timestamp:2999-01-01T00:00:00Z', '--partition', '0')).toEqual([['gl', '0', '10']]);
    const committed = await call(t.url, 'GET', '/v1/groups/gl-reset/offsets?topic=gl');
    expect(committed.body).toMatchObject({ offsets: [{ offset: 10 }, { offset: 4 }, { offset: 1 }] });

    // The describe table agrees with what was reset.
    const described = await runCli(['groups', 'describe', 'gl-reset', '--url', t.url]);
    expect(table(described.stdout, 'TOPIC').map((r) => r[4])).toEqual(['0', '0', '0']);
  });

  it('refuses a malformed --to before calling the server', async () => {
    for (const to of ['middle', 'offset:', 'offset:-1', 'offset:1.5', 'timestamp:yesterday']) {
      const result = await runCli(['groups', 'reset', 'g', '--url', t.url, '--topic', 'gl', '--to', to]);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain("option '--to <target>' argument");
    }
    const missing = await runCli(['groups', 'reset', 'g', '--url', t.url, '--to', 'earliest']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--topic');
  });
});

describe('brook against a server with auth on', () => {
  let t: TestServer;
  let admin: string;
  let reader: string;
  beforeAll(async () => {
    t = await setup({ auth: { secret: SECRET } });
    admin = await hs256({ sub: 'ops', admin: true, permissions: [{ topics: '*', actions: ['read', 'write'] }] });
    reader = await hs256({ sub: 'reader', permissions: [{ topics: '*', actions: ['read', 'write'] }] });
    await call(t.url, 'POST', '/v1/topics', { name: 'authed' }, bearer(admin));
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('sends --token or BROOK_TOKEN as a bearer token', async () => {
    const produced = await runCli(['produce', 'authed', '--url', t.url, '--token', reader], '{"n":1}\n');
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    const consumed = await runCli(['consume', 'authed', '--url', t.url, '--from-beginning', '--no-follow'], '', 30_000, { BROOK_TOKEN: reader });
    expect(consumed).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(consumed.stdout)).toMatchObject({ value: { n: 1 } });
    const tailed = await runCli(['tail', 'authed', '--url', t.url, '--token', reader, '--from-beginning', '--max', '1']);
    expect(tailed.stdout).toContain('"n": 1');
    const topics = await runCli(['topics', 'list', '--url', t.url], '', 30_000, { BROOK_TOKEN: reader });
    expect(topics.stdout).toContain('authed\t1 partition');

    const reset = await runCli(['groups', 'reset', 'ag', '--url', t.url, '--token', admin, '--topic', 'authed', '--to', 'earliest']);
    expect(reset).toMatchObject({ code: 0, stderr: '' });
    const described = await runCli(['groups', 'describe', 'ag', '--url', t.url], '', 30_000, { BROOK_TOKEN: admin });
    expect(table(described.stdout, 'TOPIC')).toEqual([['authed', '0', '0', '1', '1', '-']]);
  });

  it('reports the server refusing a missing token or a non-admin one', async () => {
    const anonymous = await runCli(['topics', 'list', '--url', t.url], '', 30_000, { BROOK_TOKEN: '' });
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toContain('UNAUTHORIZED');
    expect(anonymous.stderr).toContain('--token');

    const notAdmin = await runCli(['groups', 'reset', 'ag', '--url', t.url, '--token', reader, '--topic', 'authed', '--to', 'latest']);
    expect(notAdmin.code).not.toBe(0);
    expect(notAdmin.stderr).toContain('FORBIDDEN');
    const describe = await runCli(['groups', 'describe', 'ag', '--url', t.url, '--token', reader]);
    expect(describe.code).not.toBe(0);
    expect(describe.stderr).toContain('FORBIDDEN');
  });
});

describe('brook without a server', () => {
  it('says the server cannot be reached and exits non-zero', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    for (const args of [['groups', 'list'], ['tail', 'x'], ['topics', 'list']]) {
      const result = await runCli([...args, '--url', url]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(`cannot reach Brook at ${url}: is \`brook start\` running?`);
    }
  });
});
