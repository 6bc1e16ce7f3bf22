import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, codeOf, setup, type TestServer } from './setup.js';

interface FetchBody {
  records: { offset: number; key: string | null; value: unknown; headers: Record<string, string>; timestamp: number }[];
  next_offset: number;
  high_watermark: number;
  low_watermark: number;
}
interface OffsetsBody {
  offsets: { partition: number; offset: number }[];
}

describe('HTTP produce and fetch', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('round-trips JSON values, keys and headers', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'rt', partitions: 1 });
    const values = [{ any: 'json', n: [1, 2.5, null, true] }, 'a string', 42, true, [], { nested: { deep: 'ü€😀' } }];
    const produced = await call(t.url, 'POST', '/v1/topics/rt/records', {
      records: values.map((value, i) => ({ key: `k${i}`, value, headers: { i: String(i) } })),
    });
    expect(produced.status).toBe(200);
    expect(produced.body).toEqual({ offsets: values.map((_, i) => ({ partition: 0, offset: i })) });

    const fetched = await call(t.url, 'GET', '/v1/topics/rt/partitions/0/records?offset=0&max=500');
    expect(fetched.status).toBe(200);
    const body = fetched.body as FetchBody;
    expect(body.next_offset).toBe(values.length);
    expect(body.high_watermark).toBe(values.length);
    expect(body.low_watermark).toBe(0);
    expect(body.records.map((r) => r.value)).toEqual(values);
    expect(body.records.map((r) => r.key)).toEqual(values.map((_, i) => `k${i}`));
    expect(body.records.map((r) => r.offset)).toEqual(values.map((_, i) => i));
    expect(body.records[3]!.headers).toEqual({ i: '3' });
    for (const r of body.records) expect(typeof r.timestamp).toBe('number');
    expect(Object.keys(body.records[0]!)).toEqual(['offset', 'key', 'value', 'headers', 'timestamp']);
  });

  it('stores null and absent keys as null, and a null value as null', async () => {
    await call(t.url, 'POST', '/v1/topics/nulls/records', { records: [{ value: null }, { key: null, value: 'x' }] });
    const body = (await call(t.url, 'GET', '/v1/topics/nulls/partitions/0/records?offset=0')).body as FetchBody;
    expect(body.records.map((r) => [r.key, r.value, r.headers])).toEqual([
      [null, null, {}],
      [null, 'x', {}],
    ]);
  });

  it('returns values that are not JSON as strings', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'raw' });
    await t.engine.append('raw', 0, [{ value: Buffer.from('plain text, not JSON') }, { value: Buffer.from('{"ok":1}') }]);
    const body = (await call(t.url, 'GET', '/v1/topics/raw/partitions/0/records?offset=0')).body as FetchBody;
    expect(body.records.map((r) => r.value)).toEqual(['plain text, not JSON', { ok: 1 }]);
  });

  it('routes by key hash without a partition, keeping one key on one partition', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'hashed', partitions: 4 });
    const records = Array.from({ length: 40 }, (_, i) => ({ key: `user-${i % 5}`, value: { i } }));
    const { offsets } = (await call(t.url, 'POST', '/v1/topics/hashed/records', { records })).body as OffsetsBody;
    expect(offsets).toHaveLength(40);
    const partitionOfKey = new Map<string, number>();
    offsets.forEach((o, i) => {
      const key = records[i]!.key;
      expect(partitionOfKey.get(key) ?? o.partition).toBe(o.partition);
      partitionOfKey.set(key, o.partition);
    });
    const { partitions } = (await call(t.url, 'GET', '/v1/topics/hashed')).body as {
      partitions: { high_watermark: number }[];
    };
    expect(partitions.reduce((n, p) => n + p.high_watermark, 0)).toBe(40);
  });

  it('appends to an explicit partition, idempotently with a producer identity', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'explicit', partitions: 3 });
    const batch = { partition: 2, producer: { id: 'p-1', sequence: 0 }, records: [{ value: 'a' }, { value: 'b' }] };
    const first = await call(t.url, 'POST', '/v1/topics/explicit/records', batch);
    expect(first.body).toEqual({ offsets: [{ partition: 2, offset: 0 }, { partition: 2, offset: 1 }] });
    const retry = await call(t.url, 'POST', '/v1/topics/explicit/records', batch);
    expect(retry.body).toEqual(first.body);
    const next = await call(t.url, 'POST', '/v1/topics/explicit/records', { ...batch, producer: { id: 'p-1', sequence: 2 } });
    expect(next.body).toEqual({ offsets: [{ partition: 2, offset: 2 }, { partition: 2, offset: 3 }] });
    const gap = await call(t.url, 'POST', '/v1/topics/explicit/records', { ...batch, producer: { id: 'p-1', sequence: 9 } });
    expect(gap.status).toBe(409);
    expect(codeOf(gap)).toBe('OUT_OF_ORDER_SEQUENCE');
    const missing = await call(t.url, 'POST', '/v1/topics/explicit/records', { partition: 7, records: [{ value: 1 }] });
    expect(missing.status).toBe(404);
    expect(codeOf(missing)).toBe('PARTITION_NOT_FOUND');
  });

  it('auto-creates unknown topics with one partition', async () => {
    const produced = await call(t.url, 'POST', '/v1/topics/fresh/records', { records: [{ value: 1 }] });
    expect(produced.body).toEqual({ offsets: [{ partition: 0, offset: 0 }] });
    const topic = (await call(t.url, 'GET', '/v1/topics/fresh')).body as { partitions: unknown[] };
    expect(topic.partitions).toHaveLength(1);
    // Concurrent first produces to one new topic all succeed.
    const many = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call(t.url, 'POST', '/v1/topics/racy/records', { records: [{ value: i }] })),
    );
    expect(many.map((a) => a.status)).toEqual(Array(8).fill(200));
  });

  it('reads from earliest, latest, a timestamp, and pages with max', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'pages' });
    await call(t.url, 'POST', '/v1/topics/pages/records', { records: Array.from({ length: 10 }, (_, i) => ({ value: i })) });
    const base = '/v1/topics/pages/partitions/0/records';

    const page = (await call(t.url, 'GET', `${base}?offset=earliest&max=4`)).body as FetchBody;
    expect(page.records.map((r) => r.value)).toEqual([0, 1, 2, 3]);
    expect(page.next_offset).toBe(4);
    const rest = (await call(t.url, 'GET', `${base}?offset=${page.next_offset}`)).body as FetchBody;
    expect(rest.records.map((r) => r.value)).toEqual([4, 5, 6, 7, 8, 9]);

    const latest = (await call(t.url, 'GET', `${base}?offset=latest`)).body as FetchBody;
    expect(latest).toEqual({ records: [], next_offset: 10, high_watermark: 10, low_watermark: 0 });
    const noOffset = (await call(t.url, 'GET', base)).body as FetchBody;
    expect(noOffset.records).toHaveLength(10);

    const firstTs = page.records[0]!.timestamp;
    const byTime = (await call(t.url, 'GET', `${base}?timestamp=${firstTs}`)).body as FetchBody;
    expect(byTime.records[0]!.offset).toBe(0);
    const future = (await call(t.url, 'GET', `${base}?timestamp=${firstTs + 3_600_000}`)).body as FetchBody;
    expect(future.records).toEqual([]);
    expect(future.next_offset).toBe(10);

    const small = (await call(t.url, 'GET', `${base}?offset=0&max_bytes=1`)).body as FetchBody;
    expect(small.records.length).toBeGreaterThanOrEqual(1);
  });

  it('long-polls until a record arrives', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'poll' });
    const pending = call(t.url, 'GET', '/v1/topics/poll/partitions/0/records?offset=0&wait_ms=15000');
    // Produce repeatedly until the poll answers: no assumption about when it started waiting.
    let settled = false;
    void pending.finally(() => (settled = true));
    let produced = 0;
    while (!settled && produced < 100) {
      await call(t.url, 'POST', '/v1/topics/poll/records', { records: [{ value: produced++ }] });
      await new Promise((r) => setTimeout(r, 50));
    }
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect((answer.body as FetchBody).records.length).toBeGreaterThanOrEqual(1);
    expect((answer.body as FetchBody).records[0]!.value).toBe(0);
  });

  it('answers an unmet long poll with no records', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'quiet' });
    const answer = await call(t.url, 'GET', '/v1/topics/quiet/partitions/0/records?offset=0&wait_ms=100');
    expect(answer.body).toEqual({ records: [], next_offset: 0, high_watermark: 0, low_watermark: 0 });
  });

  it('answers 404 TOPIC_NOT_FOUND when auto-creation is off', async () => {
    const strict = await setup({ autoCreateTopics: false });
    try {
      const answer = await call(strict.url, 'POST', '/v1/topics/nope/records', { records: [{ value: 1 }] });
      expect(answer.status).toBe(404);
      expect(codeOf(answer)).toBe('TOPIC_NOT_FOUND');
      const read = await call(strict.url, 'GET', '/v1/topics/nope/partitions/0/records');
      expect(read.status).toBe(404);
      expect(codeOf(read)).toBe('TOPIC_NOT_FOUND');
    } finally {
      await strict.cleanup();
    }
  });
});
