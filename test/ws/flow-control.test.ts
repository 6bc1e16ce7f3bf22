/**
 * Credits, slow consumers, send-buffer backpressure and the produce in-flight bound. No timing
 * asserts: "nothing more was sent" is shown by the server's own introspection (the subscription
 * stopped on credit) followed by a round trip on the same, ordered connection.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { Engine, StoredRecord } from '../../src/engine/index.js';
import { recordJson } from '../../src/server/record-codec.js';
import type { SubscriptionStats } from '../../src/broker/index.js';
import { READ_AHEAD_HOLD_MS } from '../../src/broker/defaults.js';
import { eventually, setup, WsClient, type WsTestServer } from './setup.js';

function subStats(t: WsTestServer, sub: string): SubscriptionStats | undefined {
  for (const session of t.server.ws.sessions()) {
    const found = session.subscriptions.find((s) => s.sub === sub);
    if (found) return found;
  }
  return undefined;
}

/** A round trip: every frame the server sent before answering it has arrived. */
async function roundTrip(c: WsClient, topic: string): Promise<void> {
  expect(await c.request({ type: 'fetch', topic, partition: 0, offset: 0, max: 1 })).toMatchObject({ type: 'fetched' });
}

const values = (n: number, from = 0): { value: Buffer }[] =>
  Array.from({ length: n }, (_, i) => ({ value: Buffer.from(JSON.stringify({ n: from + i })) }));

describe('WebSocket protocol: flow control', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('pushes exactly the records credited, then more only after credit', async () => {
    await t.engine.createTopic('credits');
    await t.engine.append('credits', 0, values(20));
    const c = await WsClient.connect(t.wsUrl);
    await c.request({ type: 'subscribe', sub: 's', topic: 'credits', partition: 0, credits: { records: 5 } });
    await c.waitForRecords('s', 5);
    await eventually(() => subStats(t, 's')?.state === 'credit', 'the subscription to stop on credit');
    await roundTrip(c, 'credits');
    expect(c.records('s').map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(subStats(t, 's')).toMatchObject({ nextOffset: 5, recordCredits: 0 });

    c.send({ type: 'credit', sub: 's', records: 3 });
    await c.waitForRecords('s', 8);
    await eventually(() => subStats(t, 's')?.state === 'credit', 'the subscription to stop on credit again');
    await roundTrip(c, 'credits');
    expect(c.records('s').map((r) => r.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await c.close();
  });

  it('counts byte credit by each record encoded size and never exceeds it', async () => {
    await t.engine.createTopic('bytes');
    await t.engine.append('bytes', 0, values(10));
    const stored: StoredRecord[] = (await t.engine.read('bytes', 0, 0)).records;
    const size = (i: number): number => Buffer.byteLength(recordJson(stored[i]!));
    const c = await WsClient.connect(t.wsUrl);
    // One byte short of three records: two are sent.
    const bytes = size(0) + size(1) + size(2) - 1;
    await c.request({ type: 'subscribe', sub: 'b', topic: 'bytes', partition: 0, credits: { records: 100, bytes } });
    await c.waitForRecords('b', 2);
    await eventually(() => subStats(t, 'b')?.state === 'credit', 'the subscription to stop on byte credit');
    await roundTrip(c, 'bytes');
    expect(c.records('b').map((r) => r.offset)).toEqual([0, 1]);
    expect(subStats(t, 'b')).toMatchObject({ nextOffset: 2, recordCredits: 98, byteCredits: size(2) - 1 });

    // One more byte lets exactly the third through.
    c.send({ type: 'credit', sub: 'b', bytes: 1 });
    await c.waitForRecords('b', 3);
    await eventually(() => subStats(t, 'b')?.byteCredits === 0, 'the byte credit to be used up');
    await roundTrip(c, 'bytes');
    expect(c.records('b').map((r) => r.offset)).toEqual([0, 1, 2]);
    await c.close();
  });

  it('holds nothing for a consumer without credit, however much is produced, once its read-ahead expires', async () => {
    await t.engine.createTopic('slow');
    const c = await WsClient.connect(t.wsUrl);
    await c.request({ type: 'subscribe', sub: 'idle', topic: 'slow', partition: 0, credits: { records: 5 } });
    for (let i = 0; i < 10; i++) await t.engine.append('slow', 0, values(500, i * 500));
    await c.waitForRecords('idle', 5);
    await eventually(() => subStats(t, 'idle')?.state === 'credit', 'the subscription to stop on credit');
    await roundTrip(c, 'slow');

    // 5,000 records in the log, 5 sent. The subscription may have read its next chunk ahead
    // (bounded, src/broker/subscription.ts); without credit it lets it go, and then the server
    // remembers a position and nothing else: nothing queued for the socket either.
    await vi.waitFor(() => expect(subStats(t, 'idle')?.readAhead).toBeGreaterThan(0));
    // What it holds is on the read budget, and the budget is on /metrics.
    expect(await readBudgetInUse(t.url)).toBeGreaterThan(0);
    await vi.waitFor(() => expect(subStats(t, 'idle')?.readAhead).toBe(0), { timeout: READ_AHEAD_HOLD_MS * 3, interval: 50 });
    expect(await readBudgetInUse(t.url)).toBe(0);
    expect((await t.engine.watermarks('slow', 0)).highWatermark).toBe(5000);
    expect(c.records('idle')).toHaveLength(5);
    const session = t.server.ws.sessions().find((s) => s.subscriptions.some((x) => x.sub === 'idle'))!;
    expect(session.bufferedBytes).toBe(0);
    expect(session.subscriptions).toEqual([
      { sub: 'idle', topic: 'slow', partition: 0, state: 'credit', nextOffset: 5, recordCredits: 0, byteCredits: null, readAhead: 0 },
    ]);
    await c.close();
  });

  it('pauses pushing while the connection send buffer is over its bound, then resumes without a gap', async () => {
    const bound = 64 * 1024;
    const small = await setup({ ws: { maxBufferedBytes: bound } });
    try {
      await small.engine.createTopic('firehose', { durability: 'os' });
      // 24 MiB per subscription: far more than the loopback socket buffers hold, so the
      // server's own send buffer fills.
      const value = Buffer.from(JSON.stringify('x'.repeat(8 * 1024)));
      const total = 3000;
      for (let i = 0; i < total; i += 500) await small.engine.append('firehose', 0, Array.from({ length: 500 }, () => ({ value })));
      const c = await WsClient.connect(small.wsUrl);
      await c.welcome();
      c.ws.pause();
      const subs = ['f0', 'f1', 'f2', 'f3'];
      for (const sub of subs) c.send({ type: 'subscribe', id: sub, sub, topic: 'firehose', partition: 0, credits: { records: total } });
      await eventually(
        () => subs.every((sub) => subStats(small, sub)?.state === 'backpressure'),
        'every subscription to pause on backpressure',
      );
      const session = small.server.ws.sessions()[0]!;
      // Over the bound by at most the one frame that crossed it (a push reads about 1 MiB at
      // most), however many subscriptions share the connection.
      expect(session.bufferedBytes).toBeGreaterThan(bound);
      expect(session.bufferedBytes).toBeLessThan(bound + 1.25 * 1024 * 1024);
      for (const sub of subs) expect(subStats(small, sub)!.nextOffset).toBeLessThan(total);

      c.ws.resume();
      for (const sub of subs) {
        const records = await c.waitForRecords(sub, total, 60_000);
        expect(records).toHaveLength(total);
        expect(records.every((r, i) => r.offset === i)).toBe(true);
      }
      await c.close();
    } finally {
      await small.cleanup();
    }
  });
});

describe('WebSocket protocol: produce in-flight bound and quotas', () => {
  it('applies the HTTP produce quotas: RATE_LIMITED and slow_down, nothing appended, then through once refilled', async () => {
    let now = 0;
    const t = await setup({ quotas: { tiers: { regular: { recordsPerSecond: 2 } }, now: () => now } });
    try {
      await t.engine.createTopic('quota');
      const c = await WsClient.connect(t.wsUrl);
      const batch = { type: 'produce', topic: 'quota', partition: 0, records: [{ value: 1 }, { value: 2 }] };
      expect(await c.request(batch)).toMatchObject({ type: 'produced' });
      expect(await c.request(batch)).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
      expect(await c.waitFor((f) => f.type === 'slow_down')).toEqual({ type: 'slow_down', retry_after_ms: 1000 });
      expect((await t.engine.watermarks('quota', 0)).highWatermark).toBe(2);
      now += 1_000;
      expect(await c.request(batch)).toMatchObject({ type: 'produced', offsets: [{ offset: 2 }, { offset: 3 }] });
      await c.close();
    } finally {
      await t.cleanup();
    }
  });

  it('refuses produce frames past max_inflight_produce with RATE_LIMITED, appends nothing of them, and says slow_down', async () => {
    // Appends wait at a gate, so the first two are certainly in flight when the third arrives.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gated = (engine: EmbeddedEngine): Engine =>
      new Proxy(engine, {
        get(target, prop, receiver) {
          if (prop === 'append') {
            return async (...args: Parameters<Engine['append']>) => {
              await gate;
              return target.append(...args);
            };
          }
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const t = await setup({ ws: { maxInflightProduce: 2 }, wrapEngine: gated });
    try {
      await t.engine.createTopic('gate');
      const c = await WsClient.connect(t.wsUrl);
      expect((await c.welcome())['limits']).toMatchObject({ max_inflight_produce: 2 });
      for (const id of [101, 102, 103]) c.send({ type: 'produce', id, topic: 'gate', partition: 0, records: [{ value: id }] });
      expect(await c.waitFor((f) => f['id'] === 103)).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
      expect(await c.waitFor((f) => f.type === 'slow_down')).toEqual({ type: 'slow_down', retry_after_ms: 50 });
      open();
      expect(await c.waitFor((f) => f['id'] === 101)).toMatchObject({ type: 'produced', offsets: [{ partition: 0, offset: 0 }] });
      expect(await c.waitFor((f) => f['id'] === 102)).toMatchObject({ type: 'produced', offsets: [{ partition: 0, offset: 1 }] });
      const stored = await t.engine.read('gate', 0, 0);
      expect(stored.records.map((r) => Buffer.from(r.value!).toString())).toEqual(['101', '102']);
      // The window is free again.
      expect(await c.request({ type: 'produce', topic: 'gate', partition: 0, records: [{ value: 4 }] })).toMatchObject({
        type: 'produced',
        offsets: [{ offset: 2 }],
      });
      await c.close();
    } finally {
      await t.cleanup();
    }
  });
});

async function readBudgetInUse(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('brook_read_budget_in_use_bytes '));
  if (line === undefined) throw new Error('brook_read_budget_in_use_bytes is not on /metrics');
  return Number(line.split(' ')[1]);
}
