import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { call, setup, type TestServer } from '../server/setup.js';

describe('brook queues', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('enqueues from arguments and stdin, lists, describes, shows and redrives dead letters', async () => {
    const put = await runCli(['queues', 'enqueue', 'cq', '{"n":1}', 'plain text', '--url', t.url]);
    expect(put.stderr).toBe('');
    expect(put.stdout.trim().split('\n')).toEqual(['0', '1']);
    const piped = await runCli(['queues', 'enqueue', 'cq', '--priority', '5', '--url', t.url], '{"n":2}\n{"n":3}\n');
    expect(piped.stdout.trim().split('\n')).toEqual(['2', '3']);

    const got = (await call(t.url, 'POST', '/v1/queues/cq/receive', { max: 1 })).body as { messages: { receipt: string; value: unknown }[] };
    expect(got.messages[0]!.value).toEqual({ n: 2 });
    await call(t.url, 'POST', '/v1/queues/cq/reject', { receipts: [got.messages[0]!.receipt], error: 'cannot parse' });

    const listed = await runCli(['queues', 'list', '--url', t.url]);
    expect(listed.stdout).toMatch(/^cq\s+3\s+3\s+0\s+0\s+1\s/m);
    const described = await runCli(['queues', 'describe', 'cq', '--json', '--url', t.url]);
    expect(JSON.parse(described.stdout)).toMatchObject({ name: 'cq', depth: 3, dead_letters: 1, config: { max_deliveries: 5 } });

    const dead = await runCli(['queues', 'dead-letters', 'cq', '--json', '--url', t.url]);
    expect(JSON.parse(dead.stdout.trim())).toMatchObject({ id: '2', value: { n: 2 }, reason: 'REJECTED', last_error: 'cannot parse' });
    const refused = await runCli(['queues', 'redrive', 'cq', '--url', t.url]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('exactly one of --all, --ids or --older-than-ms');
    const redriven = await runCli(['queues', 'redrive', 'cq', '--ids', '2', '--url', t.url]);
    expect(redriven.stdout.trim()).toBe('redrove 1 dead letter');
    expect((await call(t.url, 'GET', '/v1/queues/cq')).body).toMatchObject({ depth: 4, dead_letters: 0 });
    const missing = await runCli(['queues', 'describe', 'nope', '--url', t.url]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('QUEUE_NOT_FOUND');
  });
});
