import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../server/setup.js';
import { eventually, setup, WsClient, type Frame, type WsTestServer } from '../ws/setup.js';

interface Job {
  id: string;
  receipt: string;
  deliveries: number;
  value: unknown;
}

let s: WsTestServer;
beforeAll(async () => {
  s = await setup();
});
afterAll(async () => {
  await s.cleanup();
});

async function client(): Promise<WsClient> {
  const c = await WsClient.connect(s.wsUrl);
  await c.welcome();
  return c;
}

const pushed = (c: WsClient, sub: string): Job[] =>
  c.frames.filter((f) => f.type === 'jobs' && f['sub'] === sub).flatMap((f) => f['messages'] as Job[]);

describe('queue frames over /v1/ws', () => {
  it('enqueues, receives, acks, and refuses a second ack with UNKNOWN_RECEIPT', async () => {
    const c = await client();
    const enq = await c.request({ type: 'enqueue', queue: 'w-basic', messages: [{ value: { a: 1 } }, { value: 'b', priority: 2 }] });
    expect(enq).toMatchObject({ type: 'enqueued', ids: ['0', '1'] });
    const got = await c.request({ type: 'receive', queue: 'w-basic', max: 10 });
    const messages = got['messages'] as Job[];
    expect(messages.map((m) => m.value)).toEqual(['b', { a: 1 }]);
    expect(await c.request({ type: 'ack', queue: 'w-basic', receipts: messages.map((m) => m.receipt) })).toMatchObject({ type: 'settled' });
    const again = await c.request({ type: 'ack', queue: 'w-basic', receipts: [messages[0]!.receipt] });
    expect(again).toMatchObject({ type: 'error', code: 'UNKNOWN_RECEIPT' });
    const bad = await c.request({ type: 'nack', queue: 'w-basic', receipts: ['x'], delay_ms: -1 });
    expect(bad).toMatchObject({ type: 'error', code: 'INVALID_FRAME' });
    await c.close();
  });

  it('pushes deliveries under credits, more after each credit frame', async () => {
    const c = await client();
    await c.request({ type: 'enqueue', queue: 'w-push', messages: Array.from({ length: 5 }, (_, i) => ({ value: i })) });
    expect(await c.request({ type: 'work', sub: 'jobs-1', queue: 'w-push', credits: 2 })).toMatchObject({ type: 'working', sub: 'jobs-1' });
    await eventually(() => pushed(c, 'jobs-1').length === 2, 'two pushed jobs');
    // No credit left: nothing more comes, however long we wait for the queue's next move.
    await c.request({ type: 'enqueue', queue: 'w-push', messages: [{ value: 'late' }] });
    expect(pushed(c, 'jobs-1')).toHaveLength(2);
    const first = pushed(c, 'jobs-1');
    await c.request({ type: 'ack', queue: 'w-push', receipts: first.map((j) => j.receipt) });
    c.send({ type: 'credit', sub: 'jobs-1', records: 10 });
    await eventually(() => pushed(c, 'jobs-1').length === 6, 'all six jobs pushed');
    expect(pushed(c, 'jobs-1').map((j) => j.value)).toEqual([0, 1, 2, 3, 4, 'late']);
    expect(await c.request({ type: 'stop_work', sub: 'jobs-1' })).toMatchObject({ type: 'work_stopped' });
    await c.close();
  });

  it('releases the leases of a connection that goes away, so another worker gets them at once', async () => {
    const a = await client();
    await a.request({ type: 'enqueue', queue: 'w-drop', messages: [{ value: 'job' }] });
    await a.request({ type: 'work', sub: 'w', queue: 'w-drop', credits: 1, visibility_ms: 600_000 });
    await eventually(() => pushed(a, 'w').length === 1, 'the job pushed to a');
    a.ws.terminate();
    await a.closed;
    const b = await client();
    const got = await eventually(async () => {
      const r = await b.request({ type: 'receive', queue: 'w-drop', max: 1 });
      const m = r['messages'] as Job[];
      return m.length > 0 ? m : false;
    }, 'the released job');
    expect(got[0]).toMatchObject({ value: 'job', deliveries: 2 });
    await b.close();
  });

  it('answers queue errors on the frame that caused them', async () => {
    const c = await client();
    const cases: [Record<string, unknown>, string][] = [
      [{ type: 'receive', queue: 'w-none' }, 'QUEUE_NOT_FOUND'],
      [{ type: 'work', sub: 'x', queue: 'w-none', credits: 1 }, 'QUEUE_NOT_FOUND'],
      [{ type: 'enqueue', queue: '__bad', messages: [{ value: 1 }] }, 'INVALID_QUEUE_NAME'],
      [{ type: 'enqueue', queue: 'w-err', messages: [] }, 'INVALID_FRAME'],
      [{ type: 'stop_work', sub: 'nope' }, 'SUBSCRIPTION_NOT_FOUND'],
    ];
    for (const [frame, code] of cases) {
      const answer: Frame = await c.request(frame);
      expect([frame['type'], answer['code']]).toEqual([frame['type'], code]);
    }
    expect((await call(s.url, 'GET', '/v1/queues/w-none')).status).toBe(404);
    await c.close();
  });
});
