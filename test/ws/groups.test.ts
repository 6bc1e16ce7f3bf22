/** Consumer groups over WebSocket: server-side push of assigned partitions, handover without a skipped record. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, setup, WsClient, type Frame, type WsTestServer } from './setup.js';

interface TopicPartitionWire {
  readonly topic: string;
  readonly partition: number;
}

const GROUP = 'billing';
const TOPIC = 'invoices';
const sub = (partition: number): string => `group:${GROUP}:${TOPIC}:${partition}`;
const partitionsOf = (frame: Frame): number[] =>
  (frame['assignment'] as TopicPartitionWire[]).map((tp) => tp.partition).sort((a, b) => a - b);

async function produceEach(t: WsTestServer, count: number): Promise<void> {
  for (let p = 0; p < 4; p++) {
    await t.engine.append(TOPIC, p, Array.from({ length: count }, (_, i) => ({ value: Buffer.from(JSON.stringify({ p, i })) })));
  }
}

/** Heartbeats until the member's assignment satisfies `done` (partitions move on the owners' heartbeats). */
async function heartbeatUntil(c: WsClient, done: (partitions: number[]) => boolean): Promise<Frame> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const answer = await c.request({ type: 'heartbeat', group: GROUP });
    expect(answer.type).toBe('assignment');
    if (done(partitionsOf(answer))) return answer;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the assignment never settled');
}

describe('WebSocket protocol: consumer groups', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup();
    await t.engine.createTopic(TOPIC, { partitions: 4 });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('splits 4 partitions between 2 connections and hands them over on close from the committed offsets', async () => {
    await produceEach(t, 10);
    const join = { type: 'join', group: GROUP, topics: [TOPIC], strategy: 'sticky', session_timeout_ms: 60_000, credits: { records: 1000 } };

    // A alone gets all four and is pushed all of them; it processes (commits) the first 4 of each.
    const a = await WsClient.connect(t.wsUrl);
    expect(partitionsOf(await a.request(join))).toEqual([0, 1, 2, 3]);
    for (let p = 0; p < 4; p++) await a.waitForRecords(sub(p), 10);
    const commitAll = (offset: number, partitions: number[]): Record<string, unknown> => ({
      type: 'commit',
      group: GROUP,
      offsets: partitions.map((partition) => ({ topic: TOPIC, partition, offset })),
    });
    expect(await a.request(commitAll(4, [0, 1, 2, 3]))).toMatchObject({ type: 'committed' });

    // B joins: the partitions moving to it are revoked from A on A's next heartbeat, and only
    // then assigned to B, which is pushed them from A's committed offset.
    const b = await WsClient.connect(t.wsUrl);
    expect(await b.request(join)).toMatchObject({ type: 'joined', assignment: [] });
    const aHeartbeat = await a.request({ type: 'heartbeat', group: GROUP });
    const aPartitions = partitionsOf(aHeartbeat);
    expect(aPartitions).toHaveLength(2);
    const moved = [0, 1, 2, 3].filter((p) => !aPartitions.includes(p));
    expect((aHeartbeat['revoked'] as TopicPartitionWire[]).map((tp) => tp.partition).sort()).toEqual(moved);
    const bAssignment = await heartbeatUntil(b, (ps) => ps.length === 2);
    expect(partitionsOf(bAssignment)).toEqual(moved);
    for (const p of moved) {
      const records = await b.waitForRecords(sub(p), 6);
      expect(records.map((r) => r.offset)).toEqual([4, 5, 6, 7, 8, 9]);
    }
    // A's revoked partitions are no longer pushed to A: its subscriptions for them are gone.
    const aSession = t.server.ws.sessions().find((s) => s.subscriptions.some((x) => x.sub === sub(aPartitions[0]!)))!;
    expect(aSession.subscriptions.map((s) => s.partition).sort()).toEqual(aPartitions);

    // New records go to each partition's owner only.
    await produceEach(t, 5);
    for (const p of aPartitions) await a.waitForRecords(sub(p), 15);
    for (const p of moved) await b.waitForRecords(sub(p), 11);

    // A commits part of what it got (up to offset 12) and its connection closes: it leaves at once.
    expect(await a.request(commitAll(12, aPartitions))).toMatchObject({ type: 'committed' });
    await a.close();
    await eventually(() => t.server.ws.sessions().length === 1, 'A to be gone');
    const bAll = await heartbeatUntil(b, (ps) => ps.length === 4);
    expect(partitionsOf(bAll)).toEqual([0, 1, 2, 3]);
    expect((await t.engine.describeGroup(GROUP)).members).toHaveLength(1);

    // B resumes A's partitions exactly where A committed: nothing skipped.
    for (const p of aPartitions) {
      const records = await b.waitForRecords(sub(p), 3);
      expect(records.map((r) => r.offset)).toEqual([12, 13, 14]);
    }
    await b.close();
  });

  it('stops pushing when the member misses its session timeout, and says so', async () => {
    const c = await WsClient.connect(t.wsUrl);
    const joined = await c.request({ type: 'join', group: 'sleepy', topics: [TOPIC], session_timeout_ms: 1000, credits: { records: 1 } });
    expect(partitionsOf(joined)).toEqual([0, 1, 2, 3]);
    expect(await c.waitFor((f) => f.type === 'error' && f['group'] === 'sleepy')).toEqual({
      type: 'error',
      group: 'sleepy',
      code: 'UNKNOWN_MEMBER',
      message: expect.stringContaining('expired'),
    });
    const sessions = t.server.ws.sessions();
    expect(sessions.some((s) => s.groups.includes('sleepy'))).toBe(false);
    expect(sessions.flatMap((s) => s.subscriptions).some((x) => x.sub.startsWith('group:sleepy:'))).toBe(false);
    expect(await c.request({ type: 'heartbeat', group: 'sleepy' })).toMatchObject({ type: 'error', code: 'UNKNOWN_MEMBER' });
    await c.close();
  });

  it('fences commits: a member cannot commit a partition it no longer owns', async () => {
    const join = { type: 'join', group: 'fenced', topics: [TOPIC], strategy: 'range', session_timeout_ms: 60_000 };
    const a = await WsClient.connect(t.wsUrl);
    expect(partitionsOf(await a.request(join))).toEqual([0, 1, 2, 3]);
    const b = await WsClient.connect(t.wsUrl);
    await b.request(join);
    const kept = partitionsOf(await a.request({ type: 'heartbeat', group: 'fenced' }));
    const lost = [0, 1, 2, 3].filter((p) => !kept.includes(p));
    const refused = await a.request({ type: 'commit', group: 'fenced', offsets: [{ topic: TOPIC, partition: lost[0], offset: 1 }] });
    expect(refused).toMatchObject({ type: 'error', code: 'NOT_PARTITION_OWNER' });
    await Promise.all([a.close(), b.close()]);
  });
});
