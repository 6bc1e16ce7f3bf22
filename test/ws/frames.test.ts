/** Every frame type of docs/protocol.md, round-tripped against a real server and engine. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setup, WsClient, type Frame, type WsTestServer } from './setup.js';

describe('WebSocket protocol: frames', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('welcomes with the session limits and speaks brook.v1.json', async () => {
    const c = await WsClient.connect(t.wsUrl, { protocols: ['brook.v1.json'] });
    expect(c.ws.protocol).toBe('brook.v1.json');
    expect(await c.welcome()).toEqual({
      type: 'welcome',
      session: expect.stringMatching(/^s-/),
      limits: {
        max_frame_bytes: 8 * 1024 * 1024,
        max_inflight_produce: 32,
        max_inflight_requests: 64,
        max_subscriptions: 1000,
        max_record_bytes: 1024 * 1024,
        max_batch_records: 10_000,
        heartbeat_ms: 30_000,
        producer_batches: 8,
      },
      features: ['compact_ack'],
    });
    // No subprotocol asked for: JSON anyway.
    const plain = await WsClient.connect(t.wsUrl);
    expect(plain.ws.protocol).toBe('');
    expect((await plain.welcome()).type).toBe('welcome');
    await Promise.all([c.close(), plain.close()]);
  });

  it('produce → produced: to a partition, by key, idempotent retries, auto-created topics', async () => {
    await t.engine.createTopic('orders', { partitions: 2 });
    const c = await WsClient.connect(t.wsUrl);
    const batch = {
      type: 'produce',
      topic: 'orders',
      partition: 1,
      producer: { id: 'web-7', sequence: 0 },
      records: [{ key: 'u1', value: { item: 'book' }, headers: { trace: 'ab' } }, { value: 2 }],
    };
    expect(await c.request(batch)).toEqual({
      type: 'produced',
      id: expect.any(Number),
      offsets: [
        { partition: 1, offset: 0 },
        { partition: 1, offset: 1 },
      ],
      duplicate: false,
    });
    // A retry of the same batch is not appended again.
    expect(await c.request(batch)).toMatchObject({ type: 'produced', offsets: [{ offset: 0 }, { offset: 1 }], duplicate: true });
    expect((await t.engine.watermarks('orders', 1)).highWatermark).toBe(2);

    const byKey = await c.request({ type: 'produce', topic: 'orders', records: [{ key: 'a', value: 1 }, { key: 'b', value: 2 }] });
    expect(byKey).toMatchObject({ type: 'produced', duplicate: false });
    expect(byKey['offsets']).toHaveLength(2);

    const stored = await t.engine.read('orders', 1, 0);
    expect(Buffer.from(stored.records[0]!.value!).toString()).toBe('{"item":"book"}');
    expect(stored.records[0]!.headers).toEqual({ trace: 'ab' });

    expect(await c.request({ type: 'produce', topic: 'fresh', records: [{ value: 'x' }] })).toMatchObject({
      type: 'produced',
      offsets: [{ partition: 0, offset: 0 }],
    });
    expect((await t.engine.describeTopic('fresh')).partitions).toHaveLength(1);
    await c.close();
  });

  it('compact_ack: a run of offsets in one partition is one object; records routed by key still get the list', async () => {
    await t.engine.createTopic('compact', { partitions: 2 });
    const c = await WsClient.connect(t.wsUrl);
    const records = [{ value: 1 }, { value: 2 }, { value: 3 }];
    await c.request({ type: 'produce', topic: 'compact', partition: 1, records });
    expect(await c.request({ type: 'produce', topic: 'compact', partition: 1, compact_ack: true, records })).toEqual({
      type: 'produced',
      id: expect.any(Number),
      offsets: { partition: 1, base: 3, count: 3 },
      duplicate: false,
    });
    const byKey = await c.request({ type: 'produce', topic: 'compact', compact_ack: true, records: [{ key: 'a', value: 1 }, { key: 'b', value: 2 }] });
    expect(byKey['offsets']).toHaveLength(2);
    expect(await c.request({ type: 'produce', topic: 'compact', partition: 0, compact_ack: 'yes', records })).toMatchObject({
      type: 'error',
      code: 'INVALID_FRAME',
    });
    const byKeyOffsets = byKey['offsets'] as { partition: number }[];
    expect((await t.engine.watermarks('compact', 0)).highWatermark).toBe(byKeyOffsets.filter((o) => o.partition === 0).length);
    await c.close();
  });

  it('subscribe → subscribed, records, credit, seek → subscribed, unsubscribe → unsubscribed', async () => {
    await t.engine.createTopic('subs');
    await t.engine.append('subs', 0, [0, 1, 2].map((i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(JSON.stringify({ i })) })));
    const c = await WsClient.connect(t.wsUrl);

    const subscribed = await c.request({ type: 'subscribe', sub: 's1', topic: 'subs', partition: 0, from: 'earliest', credits: { records: 4 } });
    expect(subscribed).toEqual({ type: 'subscribed', id: expect.any(Number), sub: 's1', offset: 0, high_watermark: 3 });
    const first = await c.waitForRecords('s1', 3);
    expect(first[0]).toEqual({ offset: 0, key: 'k0', value: { i: 0 }, headers: {}, timestamp: expect.any(Number) });
    expect(first.map((r) => r.offset)).toEqual([0, 1, 2]);
    const frame = c.frames.find((f) => f.type === 'records')!;
    expect(frame).toMatchObject({ sub: 's1', partition: 0, next_offset: 3 });

    // Live: pushed as it becomes durable, within the credit left (1), then more after `credit`.
    await t.engine.append('subs', 0, [3, 4].map((i) => ({ value: Buffer.from(String(i)) })));
    await c.waitForRecords('s1', 4);
    c.send({ type: 'credit', sub: 's1', records: 10 });
    expect((await c.waitForRecords('s1', 5)).map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);

    // seek answers `subscribed` again; what follows starts at the new offset.
    const seekId = c.id();
    c.send({ type: 'seek', id: seekId, sub: 's1', from: { offset: 1 } });
    const reply = await c.waitFor((f) => f['id'] === seekId);
    expect(reply).toEqual({ type: 'subscribed', id: seekId, sub: 's1', offset: 1, high_watermark: 5 });
    const after = c.frames.indexOf(reply);
    await c.waitFor((f) => f.type === 'records' && c.frames.indexOf(f) > after);
    const replayed = c.frames.slice(after + 1).filter((f) => f.type === 'records');
    expect((replayed[0]!['records'] as { offset: number }[])[0]!.offset).toBe(1);

    expect(await c.request({ type: 'unsubscribe', sub: 's1' })).toEqual({ type: 'unsubscribed', id: expect.any(Number), sub: 's1' });
    c.send({ type: 'credit', sub: 's1', records: 1 });
    expect(await c.waitFor((f) => f.type === 'error' && f['sub'] === 's1')).toMatchObject({ code: 'SUBSCRIPTION_NOT_FOUND' });

    // Other starting points.
    expect(await c.request({ type: 'subscribe', sub: 'l', topic: 'subs', partition: 0, from: 'latest' })).toMatchObject({ offset: 5 });
    expect(await c.request({ type: 'subscribe', sub: 't', topic: 'subs', partition: 0, from: { timestamp: 0 } })).toMatchObject({ offset: 0 });
    await t.engine.commitOffsets('readers', [{ topic: 'subs', partition: 0, offset: 2 }]);
    expect(await c.request({ type: 'subscribe', sub: 'g', topic: 'subs', partition: 0, from: { group: 'readers' } })).toMatchObject({ offset: 2 });
    expect(await c.request({ type: 'subscribe', sub: 'n', topic: 'subs', partition: 0, from: { group: 'nobody' } })).toMatchObject({ offset: 0 });
    await c.close();
  });

  it('waits for data again after a seek cut its wait short, instead of polling', async () => {
    await t.engine.createTopic('quiet');
    const engine = t.engine as { read: typeof t.engine.read };
    const read = engine.read;
    let reads = 0;
    // Each read yields to the event loop first, so a subscription that polled would be counted, not hang the server.
    engine.read = async function (this: unknown, ...args: Parameters<typeof read>) {
      if (args[0] === 'quiet') reads++;
      await new Promise((resolve) => setImmediate(resolve));
      return read.apply(this, args);
    };
    const c = await WsClient.connect(t.wsUrl);
    try {
      await c.request({ type: 'subscribe', sub: 'q', topic: 'quiet', partition: 0, from: 'latest', credits: { records: 10 } });
      const seekId = c.id();
      c.send({ type: 'seek', id: seekId, sub: 'q', from: 'earliest' }); // aborts the wait in progress
      await c.waitFor((f) => f['id'] === seekId);
      reads = 0;
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      engine.read = read;
    }
    // At most the read right after the seek, then a wait: a wait on the aborted signal would return at once, read after read.
    expect(reads).toBeLessThanOrEqual(1);
    await t.engine.append('quiet', 0, [{ value: Buffer.from('1') }]);
    expect((await c.waitForRecords('q', 1)).map((r) => r.offset)).toEqual([0]);
    await c.close();
  });

  it('reports a push that cannot read as an error on the subscription, which a seek resumes', async () => {
    await t.engine.createTopic('doomed');
    const c = await WsClient.connect(t.wsUrl);
    await c.request({ type: 'subscribe', sub: 'd', topic: 'doomed', partition: 0, credits: { records: 10 } });
    await t.engine.deleteTopic('doomed');
    expect(await c.waitFor((f) => f.type === 'error' && f['sub'] === 'd')).toEqual({
      type: 'error',
      sub: 'd',
      code: 'TOPIC_NOT_FOUND',
      message: expect.any(String),
    });
    expect(await c.request({ type: 'seek', sub: 'd', from: 'earliest' })).toMatchObject({ type: 'error', code: 'TOPIC_NOT_FOUND' });
    await t.engine.createTopic('doomed');
    await t.engine.append('doomed', 0, [{ value: Buffer.from('"again"') }]);
    expect(await c.request({ type: 'seek', sub: 'd', from: 'earliest' })).toMatchObject({ type: 'subscribed', offset: 0 });
    expect((await c.waitForRecords('d', 1))[0]).toMatchObject({ offset: 0, value: 'again' });
    await c.close();
  });

  it('fetch → fetched, and a long poll answered by a later produce', async () => {
    await t.engine.createTopic('pull');
    await t.engine.append('pull', 0, [{ value: Buffer.from('1') }, { value: Buffer.from('2') }, { value: Buffer.from('3') }]);
    const c = await WsClient.connect(t.wsUrl);
    expect(await c.request({ type: 'fetch', topic: 'pull', partition: 0, offset: 0, max: 2 })).toEqual({
      type: 'fetched',
      id: expect.any(Number),
      records: [
        { offset: 0, key: null, value: 1, headers: {}, timestamp: expect.any(Number) },
        { offset: 1, key: null, value: 2, headers: {}, timestamp: expect.any(Number) },
      ],
      next_offset: 2,
      high_watermark: 3,
      low_watermark: 0,
    });
    const id = c.id();
    c.send({ type: 'fetch', id, topic: 'pull', partition: 0, offset: 3, wait_ms: 20_000 });
    // The long poll does not hold up other requests on the connection.
    expect(await c.request({ type: 'produce', topic: 'pull', partition: 0, records: [{ value: 'late' }] })).toMatchObject({ type: 'produced' });
    expect(await c.waitFor((f) => f['id'] === id)).toMatchObject({ type: 'fetched', records: [{ offset: 3, value: 'late' }], next_offset: 4 });
    await c.close();
  });

  it('join → joined, records pushed per partition, commit → committed, heartbeat → assignment, leave → left', async () => {
    await t.engine.createTopic('gt', { partitions: 2 });
    await t.engine.append('gt', 0, [{ value: Buffer.from('"a"') }]);
    await t.engine.append('gt', 1, [{ value: Buffer.from('"b"') }]);
    const c = await WsClient.connect(t.wsUrl);
    const joined = await c.request({ type: 'join', group: 'solo', topics: ['gt'], credits: { records: 100 } });
    expect(joined).toEqual({
      type: 'joined',
      id: expect.any(Number),
      group: 'solo',
      member_id: expect.any(String),
      generation: expect.any(Number),
      assignment: [
        { topic: 'gt', partition: 0 },
        { topic: 'gt', partition: 1 },
      ],
      heartbeat_interval_ms: 3333,
      session_timeout_ms: 10_000,
    });
    expect((await c.waitForRecords('group:solo:gt:0', 1))[0]).toMatchObject({ offset: 0, value: 'a' });
    expect((await c.waitForRecords('group:solo:gt:1', 1))[0]).toMatchObject({ offset: 0, value: 'b' });

    expect(await c.request({ type: 'commit', group: 'solo', offsets: [{ topic: 'gt', partition: 0, offset: 1 }] })).toEqual({
      type: 'committed',
      id: expect.any(Number),
    });
    expect(await t.engine.fetchOffsets('solo', 'gt')).toMatchObject([{ partition: 0, offset: 1 }]);

    expect(await c.request({ type: 'heartbeat', group: 'solo' })).toEqual({
      type: 'assignment',
      id: expect.any(Number),
      group: 'solo',
      generation: joined['generation'],
      assignment: joined['assignment'],
      revoked: [],
    });
    expect(await c.request({ type: 'leave', group: 'solo' })).toEqual({ type: 'left', id: expect.any(Number) });
    expect((await t.engine.describeGroup('solo')).members).toEqual([]);
    // No longer a member: heartbeats are refused, commits are unfenced (a standalone consumer).
    expect(await c.request({ type: 'heartbeat', group: 'solo' })).toMatchObject({ type: 'error', code: 'UNKNOWN_MEMBER' });
    expect(await c.request({ type: 'commit', group: 'solo', offsets: [{ topic: 'gt', partition: 1, offset: 1 }] })).toMatchObject({
      type: 'committed',
    });
    await c.close();
  });

  it('answers refused requests with error frames carrying stable codes', async () => {
    await t.engine.createTopic('codes');
    const c = await WsClient.connect(t.wsUrl);
    const codeOf = async (frame: Record<string, unknown>): Promise<unknown> => {
      const answer: Frame = await c.request(frame);
      expect(answer.type).toBe('error');
      expect(answer['message']).toEqual(expect.any(String));
      return answer['code'];
    };
    expect(await codeOf({ type: 'subscribe', sub: 'x', topic: 'ordrs', partition: 0 })).toBe('TOPIC_NOT_FOUND');
    expect(await codeOf({ type: 'subscribe', sub: 'x', topic: 'codes', partition: 3 })).toBe('PARTITION_NOT_FOUND');
    expect(await codeOf({ type: 'subscribe', sub: 'x', topic: 'codes', partition: 0, from: { offset: 9 } })).toBe('OFFSET_OUT_OF_RANGE');
    expect(await codeOf({ type: 'subscribe', sub: 'x', topic: 'bad name!', partition: 0 })).toBe('INVALID_TOPIC_NAME');
    expect(await codeOf({ type: 'subscribe', sub: 'group:x', topic: 'codes', partition: 0 })).toBe('INVALID_FRAME');
    await c.request({ type: 'subscribe', sub: 'dup', topic: 'codes', partition: 0 });
    expect(await codeOf({ type: 'subscribe', sub: 'dup', topic: 'codes', partition: 0 })).toBe('SUBSCRIPTION_EXISTS');
    expect(await codeOf({ type: 'seek', sub: 'none', from: 'earliest' })).toBe('SUBSCRIPTION_NOT_FOUND');
    expect(await codeOf({ type: 'fetch', topic: 'codes', partition: 0, offset: 5 })).toBe('OFFSET_OUT_OF_RANGE');
    expect(await codeOf({ type: 'produce', topic: '__internal', records: [{ value: 1 }] })).toBe('INVALID_TOPIC_NAME');
    expect(await codeOf({ type: 'produce', topic: 'codes', records: [] })).toBe('INVALID_FRAME');
    expect(await codeOf({ type: 'produce', topic: 'codes', producer: { id: 'p', sequence: 0 }, records: [{ value: 1 }] })).toBe(
      'INVALID_FRAME',
    );
    expect(await codeOf({ type: 'produce', topic: 'codes', records: [{ value: 1, extra: true }] })).toBe('INVALID_FRAME');
    expect(await codeOf({ type: 'produce', topic: 'codes', records: [{ value: 1, headers: { ['h'.repeat(16_385)]: 'v' } }] })).toBe('INVALID_FRAME');
    expect(await codeOf({ type: 'produce', topic: 'codes', records: [{ value: 'x'.repeat(1024 * 1024 + 1) }] })).toBe(
      'MESSAGE_TOO_LARGE',
    );
    expect((await t.engine.watermarks('codes', 0)).highWatermark).toBe(0);
    const idempotent = { type: 'produce', topic: 'codes', partition: 0, records: [{ value: 1 }] };
    expect(await c.request({ ...idempotent, producer: { id: 'p', sequence: 0 } })).toMatchObject({ type: 'produced' });
    expect(await codeOf({ ...idempotent, producer: { id: 'p', sequence: 5 } })).toBe('OUT_OF_ORDER_SEQUENCE');
    expect(await codeOf({ type: 'heartbeat', group: 'never' })).toBe('UNKNOWN_MEMBER');
    expect(await codeOf({ type: 'unsubscribe', sub: 'nope' })).toBe('SUBSCRIPTION_NOT_FOUND');
    // Only the accepted produce was appended.
    expect((await t.engine.watermarks('codes', 0)).highWatermark).toBe(1);
    await c.close();
  });
});
