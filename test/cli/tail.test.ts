import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRecord } from '../../src/cli/commands/tail.js';
import { call, setup, type TestServer } from '../server/setup.js';
import { runCli, startCli } from './run-cli.js';

interface Block {
  time: string;
  partition: number;
  offset: number;
  key: string;
  headers: string | undefined;
  value: unknown;
}

/** Parses `brook tail` output back: blocks end in an empty line; the value is indented JSON. */
function blocks(stdout: string): Block[] {
  expect(stdout === '' || stdout.endsWith('\n\n')).toBe(true);
  return stdout
    .split('\n\n')
    .filter((b) => b !== '')
    .map((b) => {
      const [head, ...rest] = b.split('\n');
      const m = /^(\S+) {2}partition (\d+) {2}offset (\d+) {2}key (.*)$/.exec(head!);
      expect(m, head).not.toBeNull();
      const headers = rest[0]?.startsWith('headers: ') ? rest.shift()!.slice('headers: '.length) : undefined;
      return { time: m![1]!, partition: Number(m![2]), offset: Number(m![3]), key: m![4]!, headers, value: JSON.parse(rest.join('\n')) };
    });
}

describe('brook tail', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('prints one readable block per record, from the beginning of every partition', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'tail-all', partitions: 2 });
    await call(t.url, 'POST', '/v1/topics/tail-all/records', {
      partition: 0,
      records: [{ key: 'user-1', value: { item: 'book', tags: ['a', 'b'] }, headers: { source: 'web', trace: 't1' } }, { value: 'plain' }],
    });
    await call(t.url, 'POST', '/v1/topics/tail-all/records', { partition: 1, records: [{ key: 'user-2', value: 42 }] });

    const result = await runCli(['tail', 'tail-all', '--url', t.url, '--from-beginning', '--max', '3']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const printed = blocks(result.stdout).sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    expect(printed).toEqual([
      { time: expect.any(String), partition: 0, offset: 0, key: 'user-1', headers: 'source=web, trace=t1', value: { item: 'book', tags: ['a', 'b'] } },
      { time: expect.any(String), partition: 0, offset: 1, key: '(none)', headers: undefined, value: 'plain' },
      { time: expect.any(String), partition: 1, offset: 0, key: 'user-2', headers: undefined, value: 42 },
    ]);
    for (const b of printed) expect(new Date(b.time).toISOString()).toBe(b.time);
    // Values are pretty-printed, not one line.
    expect(result.stdout).toContain('{\n  "item": "book",\n  "tags": [\n    "a",\n    "b"\n  ]\n}\n');

    const one = await runCli(['tail', 'tail-all', '--url', t.url, '--from-beginning', '--partition', '1', '--max', '1']);
    expect(blocks(one.stdout)).toEqual([expect.objectContaining({ partition: 1, offset: 0, value: 42 })]);
  });

  it('follows from the latest records of every partition', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'tail-follow', partitions: 3 });
    await call(t.url, 'POST', '/v1/topics/tail-follow/records', { records: [0, 1, 2].map((p) => ({ key: `old-${p}`, value: 'old' })) });
    const tailer = startCli(['tail', 'tail-follow', '--url', t.url, '--max', '6']);
    const done = tailer.exited();
    let finished = false;
    void done.then(() => (finished = true));
    // Produce to every partition until the tail has printed enough: no assumption about when it began polling.
    for (let i = 0; !finished && i < 600; i++) {
      for (const partition of [0, 1, 2]) {
        await call(t.url, 'POST', '/v1/topics/tail-follow/records', { partition, records: [{ key: `k${i}`, value: { i, partition } }] });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const result = await done;
    expect(result.code).toBe(0);
    const printed = blocks(result.stdout);
    expect(printed).toHaveLength(6);
    for (const b of printed) {
      expect(b.value).toMatchObject({ partition: b.partition });
      expect(b.key).not.toMatch(/^old/);
    }
  });

  it('stops on SIGINT with status 0', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'tail-sigint' });
    await call(t.url, 'POST', '/v1/topics/tail-sigint/records', { records: [{ value: 'only' }] });
    const tailer = startCli(['tail', 'tail-sigint', '--url', t.url, '--from-beginning']);
    await tailer.waitForLine(/^"only"$/);
    tailer.child.kill('SIGINT');
    const result = await tailer.exited();
    expect(result.code).toBe(0);
    expect(blocks(result.stdout)).toHaveLength(1);
  });

  it('formats a null value and a null key', () => {
    expect(formatRecord({ partition: 0, offset: 9, key: null, value: null, headers: {}, timestamp: 0 })).toBe(
      '1970-01-01T00:00:00.000Z  partition 0  offset 9  key (none)\nnull\n',
    );
  });
});

describe('brook consume --follow / --no-follow', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
    await call(t.url, 'POST', '/v1/topics', { name: 'finite', partitions: 3 });
    await call(t.url, 'POST', '/v1/topics/finite/records', { records: Array.from({ length: 700 }, (_, i) => ({ key: `k${i}`, value: i })) });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('--no-follow stops once every partition is caught up', async () => {
    const all = await runCli(['consume', 'finite', '--url', t.url, '--from-beginning', '--no-follow']);
    expect(all.code).toBe(0);
    const values = all.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { value: number }).value);
    expect(values.sort((a, b) => a - b)).toEqual(Array.from({ length: 700 }, (_, i) => i));

    // From the latest offset there is nothing to read: it ends at once, printing nothing.
    expect(await runCli(['consume', 'finite', '--url', t.url, '--no-follow'])).toMatchObject({ code: 0, stdout: '' });
  });

  it('--no-follow with a group reads and commits what is left', async () => {
    await call(t.url, 'POST', '/v1/groups/finite-g/offsets', {
      offsets: [0, 1, 2].map((partition) => ({ topic: 'finite', partition, offset: 0 })),
    });
    const first = await runCli(['consume', 'finite', '--url', t.url, '--group', 'finite-g', '--no-follow']);
    expect(first.stdout.split('\n').filter((l) => l !== '')).toHaveLength(700);
    const again = await runCli(['consume', 'finite', '--url', t.url, '--group', 'finite-g', '--no-follow']);
    expect(again).toMatchObject({ code: 0, stdout: '' });
  });

  it('--follow (the default) keeps waiting once caught up', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'followed' });
    await call(t.url, 'POST', '/v1/topics/followed/records', { records: [{ value: 'first' }] });
    const consumer = startCli(['consume', 'followed', '--url', t.url, '--from-beginning', '--follow', '--max', '2']);
    await consumer.waitForLine(/"first"/);
    await call(t.url, 'POST', '/v1/topics/followed/records', { records: [{ value: 'second' }] });
    const result = await consumer.exited();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('"second"');
  });
});
