import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, codeOf, setup, type TestServer } from './setup.js';
import { bearer, hs256, SECRET } from './tokens.js';

interface OffsetBody {
  topic: string;
  partition: number;
  offset: number;
  high_watermark?: number | null;
  lag?: number | null;
}

const offsetsOf = (body: unknown): { topic: string; partition: number; offset: number }[] =>
  (body as { offsets: OffsetBody[] }).offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset }));

describe('group lag and offset reset', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
    await call(t.url, 'POST', '/v1/topics', { name: 'events', partitions: 2 });
    await call(t.url, 'POST', '/v1/topics/events/records', { partition: 0, records: Array.from({ length: 6 }, (_, i) => ({ value: i })) });
    await call(t.url, 'POST', '/v1/topics/events/records', { partition: 1, records: Array.from({ length: 3 }, (_, i) => ({ value: i })) });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('describes each committed offset with its high watermark and lag', async () => {
    await call(t.url, 'POST', '/v1/groups/lagging/offsets', {
      offsets: [
        { topic: 'events', partition: 0, offset: 2 },
        { topic: 'events', partition: 1, offset: 3 },
      ],
    });
    const described = await call(t.url, 'GET', '/v1/groups/lagging');
    expect(described.status).toBe(200);
    expect((described.body as { offsets: OffsetBody[] }).offsets).toEqual([
      expect.objectContaining({ topic: 'events', partition: 0, offset: 2, high_watermark: 6, lag: 4 }),
      expect.objectContaining({ topic: 'events', partition: 1, offset: 3, high_watermark: 3, lag: 0 }),
    ]);
    await call(t.url, 'POST', '/v1/topics/events/records', { partition: 1, records: [{ value: 'more' }] });
    const later = (await call(t.url, 'GET', '/v1/groups/lagging')).body as { offsets: OffsetBody[] };
    expect(later.offsets[1]).toMatchObject({ high_watermark: 4, lag: 1 });
  });

  it('resets to earliest, latest, an offset (clamped) and a timestamp', async () => {
    const reset = (to: unknown, partition?: number) =>
      call(t.url, 'POST', '/v1/groups/resetting/offsets/reset', { topic: 'events', to, ...(partition === undefined ? {} : { partition }) });
    const latest = await reset('latest');
    expect(latest.status).toBe(200);
    const highs = (await call(t.url, 'GET', '/v1/topics/events')).body as { partitions: { high_watermark: number }[] };
    expect(offsetsOf(latest.body)).toEqual([
      { topic: 'events', partition: 0, offset: highs.partitions[0]!.high_watermark },
      { topic: 'events', partition: 1, offset: highs.partitions[1]!.high_watermark },
    ]);

    expect(offsetsOf((await reset('earliest')).body)).toEqual([
      { topic: 'events', partition: 0, offset: 0 },
      { topic: 'events', partition: 1, offset: 0 },
    ]);
    // One partition moves; the other keeps its offset.
    expect(offsetsOf((await reset({ offset: 5 }, 0)).body)).toEqual([{ topic: 'events', partition: 0, offset: 5 }]);
    expect(offsetsOf((await call(t.url, 'GET', '/v1/groups/resetting/offsets?topic=events')).body)).toEqual([
      { topic: 'events', partition: 0, offset: 5 },
      { topic: 'events', partition: 1, offset: 0 },
    ]);
    // Past the end of the shorter partition: clamped to its high watermark.
    expect(offsetsOf((await reset({ offset: 5 })).body)).toEqual([
      { topic: 'events', partition: 0, offset: 5 },
      { topic: 'events', partition: 1, offset: highs.partitions[1]!.high_watermark },
    ]);

  });

  it('resets to the first record at or after a timestamp', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'timed' });
    const append = async (value: number): Promise<{ offset: number; timestamp: number }> => {
      const { offsets } = (await call(t.url, 'POST', '/v1/topics/timed/records', { records: [{ value }] })).body as { offsets: { offset: number }[] };
      const offset = offsets[0]!.offset;
      const read = (await call(t.url, 'GET', `/v1/topics/timed/partitions/0/records?offset=${offset}&max=1`)).body as {
        records: { timestamp: number }[];
      };
      return { offset, timestamp: read.records[0]!.timestamp };
    };
    // Append until the clock has moved, so the timestamp picks one record out of several.
    const first = await append(0);
    let later = first;
    for (let i = 1; later.timestamp === first.timestamp && i < 10_000; i++) later = await append(i);
    expect(later.timestamp).toBeGreaterThan(first.timestamp);
    await append(-1);

    const reset = async (timestamp: number): Promise<number> => {
      const answer = await call(t.url, 'POST', '/v1/groups/timed-g/offsets/reset', { topic: 'timed', to: { timestamp } });
      expect(answer.status).toBe(200);
      return offsetsOf(answer.body)[0]!.offset;
    };
    expect(await reset(later.timestamp)).toBe(later.offset);
    expect(await reset(first.timestamp)).toBe(0);
    expect(await reset(0)).toBe(0);
    expect(await reset(Number.MAX_SAFE_INTEGER)).toBe(later.offset + 2); // past every record: the high watermark
  });

  it('refuses a reset while a live member reads the topic', async () => {
    await call(t.url, 'POST', '/v1/topics', { name: 'unrelated' });
    const joined = (await call(t.url, 'POST', '/v1/groups/busy/members', { topics: ['events'], session_timeout_ms: 60_000 })).body as {
      member_id: string;
    };
    const refused = await call(t.url, 'POST', '/v1/groups/busy/offsets/reset', { topic: 'events', to: 'earliest' });
    expect(refused.status).toBe(409);
    expect(codeOf(refused)).toBe('GROUP_NOT_EMPTY');
    expect(offsetsOf(await call(t.url, 'GET', '/v1/groups/busy/offsets').then((a) => a.body))).toEqual([]);

    // A topic no member reads can be reset.
    expect((await call(t.url, 'POST', '/v1/groups/busy/offsets/reset', { topic: 'unrelated', to: 'latest' })).status).toBe(200);

    await call(t.url, 'DELETE', `/v1/groups/busy/members/${joined.member_id}`);
    expect((await call(t.url, 'POST', '/v1/groups/busy/offsets/reset', { topic: 'events', to: 'earliest' })).status).toBe(200);
  });

  it('refuses unknown topics, partitions and malformed targets', async () => {
    const path = '/v1/groups/g/offsets/reset';
    expect(codeOf(await call(t.url, 'POST', path, { topic: 'nope', to: 'earliest' }))).toBe('TOPIC_NOT_FOUND');
    expect(codeOf(await call(t.url, 'POST', path, { topic: 'events', partition: 7, to: 'earliest' }))).toBe('PARTITION_NOT_FOUND');
    for (const to of ['middle', { offset: -1 }, { offset: 1, timestamp: 2 }, { ts: 1 }, 3]) {
      const answer = await call(t.url, 'POST', path, { topic: 'events', to });
      expect(answer.status).toBe(400);
      expect(codeOf(answer)).toBe('INVALID_REQUEST');
    }
    expect(codeOf(await call(t.url, 'POST', path, { topic: 'bad name', to: 'earliest' }))).toBe('INVALID_TOPIC_NAME');
  });
});

describe('group offset reset with auth on', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup({ auth: { secret: SECRET } });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('needs an admin token', async () => {
    const admin = bearer(await hs256({ sub: 'ops', admin: true }));
    const reader = bearer(await hs256({ sub: 'reader', permissions: [{ topics: '*', actions: ['read', 'write'] }] }));
    expect((await call(t.url, 'POST', '/v1/topics', { name: 'secured' }, admin)).status).toBe(201);
    const body = { topic: 'secured', to: 'earliest' };

    const anonymous = await call(t.url, 'POST', '/v1/groups/g/offsets/reset', body);
    expect(anonymous.status).toBe(401);
    const forbidden = await call(t.url, 'POST', '/v1/groups/g/offsets/reset', body, reader);
    expect(forbidden.status).toBe(403);
    expect(codeOf(forbidden)).toBe('FORBIDDEN');
    const done = await call(t.url, 'POST', '/v1/groups/g/offsets/reset', body, admin);
    expect(done.status).toBe(200);
    expect(offsetsOf(done.body)).toEqual([{ topic: 'secured', partition: 0, offset: 0 }]);
  });
});
