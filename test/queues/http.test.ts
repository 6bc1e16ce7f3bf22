import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, codeOf, setup, type TestServer } from '../server/setup.js';
import { bearer, hs256, SECRET } from '../server/tokens.js';

let s: TestServer;
beforeAll(async () => {
  s = await setup();
});
afterAll(async () => {
  await s.cleanup();
});

interface Received {
  messages: { id: string; receipt: string; deliveries: number; value: unknown; key: string | null }[];
}

describe('queues over HTTP', () => {
  it('enqueues, receives, acks with the documented shapes', async () => {
    const put = await call(s.url, 'POST', '/v1/queues/h-basic/messages', {
      messages: [{ value: { job: 1 } }, { value: 'two', priority: 3, key: 'k', dedup_id: 'd-2' }, { value: [3], delay_ms: 60_000 }],
    });
    expect(put.status).toBe(200);
    const ids = (put.body as { ids: string[] }).ids;
    expect(ids).toHaveLength(3);
    const got = await call(s.url, 'POST', '/v1/queues/h-basic/receive', { max: 10, visibility_ms: 30_000, wait_ms: 0 });
    expect(got.status).toBe(200);
    const { messages } = got.body as Received;
    expect(messages.map((m) => [m.id, m.value, m.deliveries, m.key])).toEqual([
      [ids[1], 'two', 1, 'k'],
      [ids[0], { job: 1 }, 1, null],
    ]);
    expect((await call(s.url, 'POST', '/v1/queues/h-basic/ack', { receipts: messages.map((m) => m.receipt) })).status).toBe(204);
    const again = await call(s.url, 'POST', '/v1/queues/h-basic/ack', { receipts: [messages[0]!.receipt] });
    expect([again.status, codeOf(again)]).toEqual([409, 'UNKNOWN_RECEIPT']);
    const desc = await call(s.url, 'GET', '/v1/queues/h-basic');
    expect(desc.body).toMatchObject({ name: 'h-basic', depth: 1, ready: 0, in_flight: 0, delayed: 1, dead_letters: 0, acked: 2 });
    const list = await call(s.url, 'GET', '/v1/queues');
    expect((list.body as { queues: { name: string }[] }).queues.map((q) => q.name)).toContain('h-basic');
  });

  it('exports queue metrics', async () => {
    const res = await fetch(`${s.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/brook_queue_depth\{queue="h-basic"\} 1/);
    expect(text).toMatch(/brook_queue_delayed\{queue="h-basic"\} 1/);
    expect(text).toMatch(/brook_queue_acks_total\{queue="h-basic"\} 2/);
    expect(text).toMatch(/brook_queue_deliveries_total\{queue="h-basic"\} 2/);
    expect(text).toMatch(/brook_queue_processing_seconds_count 2/);
    expect(text).toMatch(/brook_queue_oldest_age_seconds\{queue="h-basic"\}/);
  });

  it('long-polls until a message arrives', async () => {
    await call(s.url, 'PUT', '/v1/queues/h-wait', {});
    const waiting = call(s.url, 'POST', '/v1/queues/h-wait/receive', { wait_ms: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    await call(s.url, 'POST', '/v1/queues/h-wait/messages', { messages: [{ value: 'late' }] });
    const got = await waiting;
    expect((got.body as Received).messages.map((m) => m.value)).toEqual(['late']);
  });

  it('configures, nacks, rejects, lists and redrives dead letters', async () => {
    const put = await call(s.url, 'PUT', '/v1/queues/h-dlq', { max_deliveries: 2, backoff: { base_ms: 1, cap_ms: 1 } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ config: { max_deliveries: 2, backoff: { base_ms: 1, cap_ms: 1 } } });
    await call(s.url, 'POST', '/v1/queues/h-dlq/messages', { messages: [{ value: 'poison' }, { value: 'bad' }] });
    const first = (await call(s.url, 'POST', '/v1/queues/h-dlq/receive', { max: 2 })).body as Received;
    expect((await call(s.url, 'POST', '/v1/queues/h-dlq/reject', { receipts: [first.messages[1]!.receipt], error: 'invalid' })).status).toBe(204);
    let deliveries = 0;
    let receipt = first.messages[0]!.receipt;
    for (;;) {
      deliveries++;
      expect((await call(s.url, 'POST', '/v1/queues/h-dlq/nack', { receipts: [receipt], error: `attempt ${deliveries}` })).status).toBe(204);
      const next = (await call(s.url, 'POST', '/v1/queues/h-dlq/receive', { wait_ms: 200 })).body as Received;
      if (next.messages.length === 0) break;
      receipt = next.messages[0]!.receipt;
    }
    expect(deliveries).toBe(2);
    const dead = await call(s.url, 'GET', '/v1/queues/h-dlq/dead-letters');
    const letters = (dead.body as { messages: { id: string; value: unknown; deliveries: number; last_error: string; dead_lettered_at: number; reason: string }[] }).messages;
    expect(letters.map((l) => [l.value, l.deliveries, l.last_error, l.reason])).toEqual([
      ['bad', 1, 'invalid', 'REJECTED'],
      ['poison', 2, 'attempt 2', 'MAX_DELIVERIES'],
    ]);
    expect(typeof letters[0]!.dead_lettered_at).toBe('number');
    const one = await call(s.url, 'GET', `/v1/queues/h-dlq/dead-letters/${letters[1]!.id}`);
    expect(one.body).toMatchObject({ value: 'poison' });
    const redrive = await call(s.url, 'POST', '/v1/queues/h-dlq/dead-letters/redrive', { ids: [letters[1]!.id] });
    expect((redrive.body as { ids: string[] }).ids).toHaveLength(1);
    const del = await call(s.url, 'POST', '/v1/queues/h-dlq/dead-letters/delete', { all: true });
    expect(del.body).toEqual({ deleted: 1 });
    const back = (await call(s.url, 'POST', '/v1/queues/h-dlq/receive', {})).body as Received;
    expect(back.messages.map((m) => [m.value, m.deliveries])).toEqual([['poison', 1]]);
  });

  it('deletes a queue with its messages and dead letters', async () => {
    await call(s.url, 'POST', '/v1/queues/h-del/messages', { messages: [{ value: 1 }, { value: 2 }] });
    const got = (await call(s.url, 'POST', '/v1/queues/h-del/receive', { max: 1 })).body as Received;
    await call(s.url, 'POST', '/v1/queues/h-del/reject', { receipts: [got.messages[0]!.receipt] });
    expect((await call(s.url, 'DELETE', '/v1/queues/h-del')).status).toBe(204);
    const gone = await call(s.url, 'GET', '/v1/queues/h-del');
    expect([gone.status, codeOf(gone)]).toEqual([404, 'QUEUE_NOT_FOUND']);
    expect(codeOf(await call(s.url, 'POST', '/v1/queues/h-del/ack', { receipts: [got.messages[0]!.receipt] }))).toBe('QUEUE_NOT_FOUND');
    // Enqueueing again starts a new, empty queue.
    await call(s.url, 'POST', '/v1/queues/h-del/messages', { messages: [{ value: 3 }] });
    expect((await call(s.url, 'GET', '/v1/queues/h-del')).body).toMatchObject({ depth: 1, dead_letters: 0 });
    const topics = (await call(s.url, 'GET', '/v1/topics')).body as { topics: { name: string }[] };
    expect(topics.topics.map((t) => t.name).filter((n) => n.startsWith('__'))).toEqual([]);
  });

  it('answers bad requests with clear errors', async () => {
    await call(s.url, 'PUT', '/v1/queues/h-bad', { max_depth: 1 });
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/v1/queues/h-bad/messages', { messages: [{ value: 1, delay_ms: -1 }] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/queues/h-bad/messages', { messages: [] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/queues/h-bad/messages', { messages: [{ delay_ms: 1 }] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/queues/h-bad/messages', { messages: [{ value: 1, deadline: 1 }] }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/queues/h-bad/ack', { receipts: ['no-such-receipt'] }, 409, 'UNKNOWN_RECEIPT'],
      ['POST', '/v1/queues/h-bad/ack', { receipts: [] }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/queues/h-bad/nack', { receipts: ['x'], delay_ms: -5 }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/queues/h-bad/receive', { max: 0 }, 400, 'INVALID_REQUEST'],
      ['POST', '/v1/queues/nope/receive', {}, 404, 'QUEUE_NOT_FOUND'],
      ['POST', '/v1/queues/__x/messages', { messages: [{ value: 1 }] }, 400, 'INVALID_QUEUE_NAME'],
      ['PUT', '/v1/queues/h-bad', { max_deliveries: 0 }, 400, 'INVALID_REQUEST'],
      ['PUT', '/v1/queues/h-bad', { backoff: { base_ms: 10, cap_ms: 5 } }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/queues/h-bad/dead-letters/redrive', {}, 400, 'INVALID_REQUEST'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const answer = await call(s.url, method, path, body);
      expect([path, answer.status, codeOf(answer)]).toEqual([path, status, code]);
    }
    expect((await call(s.url, 'POST', '/v1/queues/h-bad/messages', { messages: [{ value: 1 }] })).status).toBe(200);
    const full = await call(s.url, 'POST', '/v1/queues/h-bad/messages', { messages: [{ value: 2 }] });
    expect([full.status, codeOf(full), full.headers.get('retry-after')]).toEqual([429, 'QUEUE_FULL', '1']);
  });
});

describe('queue permissions', () => {
  let secured: TestServer;
  beforeAll(async () => {
    secured = await setup({ auth: { secret: SECRET } });
  });
  afterAll(async () => {
    await secured.cleanup();
  });

  it('needs write to enqueue, read to receive, admin to configure and redrive', async () => {
    const token = async (claims: Record<string, unknown>): Promise<Record<string, string>> => bearer(await hs256(claims));
    const producer = await token({ sub: 'p', permissions: [{ topics: 'jobs.*', actions: ['write'] }] });
    const worker = await token({ sub: 'w', permissions: [{ topics: 'jobs.*', actions: ['read'] }] });
    const admin = await token({ sub: 'a', admin: true, permissions: [] });
    expect((await call(secured.url, 'POST', '/v1/queues/jobs.a/messages', { messages: [{ value: 1 }] }, producer)).status).toBe(200);
    expect(codeOf(await call(secured.url, 'POST', '/v1/queues/jobs.a/messages', { messages: [{ value: 1 }] }, worker))).toBe('FORBIDDEN');
    expect(codeOf(await call(secured.url, 'POST', '/v1/queues/jobs.a/receive', {}, producer))).toBe('FORBIDDEN');
    expect((await call(secured.url, 'POST', '/v1/queues/jobs.a/receive', {}, worker)).status).toBe(200);
    expect(codeOf(await call(secured.url, 'PUT', '/v1/queues/jobs.a', {}, worker))).toBe('FORBIDDEN');
    expect(codeOf(await call(secured.url, 'POST', '/v1/queues/jobs.a/dead-letters/redrive', { all: true }, worker))).toBe('FORBIDDEN');
    expect((await call(secured.url, 'PUT', '/v1/queues/jobs.a', { max_deliveries: 3 }, admin)).status).toBe(200);
    expect((await call(secured.url, 'POST', '/v1/queues/jobs.a/dead-letters/redrive', { all: true }, admin)).status).toBe(200);
  });
});
