import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, codeOf, setup, type TestServer } from './setup.js';

interface AssignmentBody {
  group: string;
  member_id: string;
  generation: number;
  assignment: { topic: string; partition: number }[];
  heartbeat_interval_ms: number;
  session_timeout_ms: number;
}

describe('HTTP consumer groups', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
    await call(t.url, 'POST', '/v1/topics', { name: 'orders', partitions: 2 });
    await call(t.url, 'POST', '/v1/topics', { name: 'other' });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('commits and fetches offsets', async () => {
    const commit = await call(t.url, 'POST', '/v1/groups/billing/offsets', {
      offsets: [
        { topic: 'orders', partition: 0, offset: 5, metadata: 'm' },
        { topic: 'orders', partition: 1, offset: 7 },
        { topic: 'other', partition: 0, offset: 1 },
      ],
    });
    expect(commit.status).toBe(204);
    const all = (await call(t.url, 'GET', '/v1/groups/billing/offsets')).body as { offsets: Record<string, unknown>[] };
    expect(all.offsets).toHaveLength(3);
    const orders = (await call(t.url, 'GET', '/v1/groups/billing/offsets?topic=orders')).body as {
      offsets: Record<string, unknown>[];
    };
    expect(orders.offsets).toEqual([
      { topic: 'orders', partition: 0, offset: 5, metadata: 'm', committed_at: expect.any(Number) },
      { topic: 'orders', partition: 1, offset: 7, metadata: '', committed_at: expect.any(Number) },
    ]);
    const unknownGroup = await call(t.url, 'GET', '/v1/groups/nobody/offsets');
    expect(unknownGroup.body).toEqual({ offsets: [] });

    const listed = (await call(t.url, 'GET', '/v1/groups')).body as { groups: string[] };
    expect(listed.groups).toContain('billing');
  });

  it('refuses commits to partitions that do not exist', async () => {
    const answer = await call(t.url, 'POST', '/v1/groups/g/offsets', { offsets: [{ topic: 'orders', partition: 9, offset: 0 }] });
    expect(answer.status).toBe(404);
    expect(codeOf(answer)).toBe('PARTITION_NOT_FOUND');
    const negative = await call(t.url, 'POST', '/v1/groups/g/offsets', { offsets: [{ topic: 'orders', partition: 0, offset: -1 }] });
    expect(negative.status).toBe(400);
    expect(codeOf(negative)).toBe('INVALID_REQUEST');
  });

  it('joins, heartbeats, describes and leaves', async () => {
    const joined = await call(t.url, 'POST', '/v1/groups/workers/members', {
      topics: ['orders'],
      session_timeout_ms: 30_000,
      strategy: 'range',
    });
    expect(joined.status).toBe(200);
    const a = joined.body as AssignmentBody;
    expect(a.group).toBe('workers');
    expect(typeof a.member_id).toBe('string');
    expect(a.session_timeout_ms).toBe(30_000);
    expect(a.assignment).toEqual([
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 1 },
    ]);

    const beat = await call(t.url, 'POST', `/v1/groups/workers/members/${a.member_id}/heartbeat`);
    expect(beat.status).toBe(200);
    expect((beat.body as AssignmentBody).member_id).toBe(a.member_id);

    const fenced = await call(t.url, 'POST', '/v1/groups/workers/offsets', {
      offsets: [{ topic: 'orders', partition: 1, offset: 3 }],
      member_id: a.member_id,
      generation: a.generation,
    });
    expect(fenced.status).toBe(204);

    const described = await call(t.url, 'GET', '/v1/groups/workers');
    expect(described.body).toMatchObject({
      group: 'workers',
      strategy: 'range',
      members: [{ member_id: a.member_id, client_id: '', topics: ['orders'], assignment: a.assignment }],
      offsets: [{ topic: 'orders', partition: 1, offset: 3 }],
    });

    expect((await call(t.url, 'DELETE', `/v1/groups/workers/members/${a.member_id}`)).status).toBe(204);
    const gone = await call(t.url, 'POST', `/v1/groups/workers/members/${a.member_id}/heartbeat`);
    expect(gone.status).toBe(404);
    expect(codeOf(gone)).toBe('UNKNOWN_MEMBER');
  });

  it('refuses malformed joins', async () => {
    const empty = await call(t.url, 'POST', '/v1/groups/w/members', { topics: [] });
    expect(empty.status).toBe(400);
    const strategy = await call(t.url, 'POST', '/v1/groups/w/members', { topics: ['orders'], strategy: 'random' });
    expect(strategy.status).toBe(400);
    const badName = await call(t.url, 'POST', '/v1/groups/w/members', { topics: ['no spaces'] });
    expect(badName.status).toBe(400);
    expect(codeOf(badName)).toBe('INVALID_TOPIC_NAME');
    const wrongType = await call(t.url, 'POST', '/v1/groups/w/members', { topics: 'orders' });
    expect(wrongType.status).toBe(400);
    expect(codeOf(wrongType)).toBe('INVALID_REQUEST');
  });
});
