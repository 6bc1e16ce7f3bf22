import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/queues/index.js';
import { journalTopic } from '../../src/queues/engine-storage.js';
import { bytes, queueHarness, text, type QueueHarness } from './harness.js';

let h: QueueHarness;
beforeEach(async () => {
  h = await queueHarness();
});
afterEach(async () => {
  await h.cleanup();
});

const values = (ds: readonly Delivery[]): string[] => ds.map((d) => text(d.value));

describe('basics', () => {
  it('enqueues durably, leases, acknowledges, and never hands out an acked message again', async () => {
    const ids = await h.manager.enqueue('jobs', [{ value: bytes('a') }, { value: bytes('b') }]);
    expect(ids).toEqual(['0', '1']);
    const got = await h.manager.receive('jobs', { max: 10 });
    expect(values(got)).toEqual(['a', 'b']);
    expect(got.map((d) => d.deliveries)).toEqual([1, 1]);
    expect((await h.manager.describe('jobs')).inFlight).toBe(2);
    await h.manager.ack('jobs', got.map((d) => d.receipt));
    const stats = await h.manager.describe('jobs');
    expect([stats.depth, stats.ready, stats.inFlight, stats.acked]).toEqual([0, 0, 0, 2]);
    await h.advance(60_000);
    expect(await h.manager.receive('jobs')).toEqual([]);
  });

  it('refuses unknown receipts, a second ack, negative delays and other bad input with clear codes', async () => {
    await h.manager.enqueue('bad', [{ value: bytes('x') }]);
    const [d] = await h.manager.receive('bad');
    await expect(h.manager.ack('bad', ['nope'])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
    await expect(h.manager.ack('bad', ['0.1.zzz'])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
    await h.manager.ack('bad', [d!.receipt]);
    await expect(h.manager.ack('bad', [d!.receipt])).rejects.toMatchObject({
      code: 'UNKNOWN_RECEIPT',
      message: expect.stringContaining('already settled') as unknown,
    });
    await expect(h.manager.nack('bad', [d!.receipt], -5)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.manager.enqueue('bad', [{ value: bytes('x'), delayMs: -1 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.manager.enqueue('bad', [{ value: bytes('x'), deadline: h.now() - 1 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.manager.enqueue('bad', [{ value: bytes('x'), priority: 10 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.manager.receive('bad', { max: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.manager.receive('nosuch')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    await expect(h.manager.enqueue('__x', [{ value: bytes('x') }])).rejects.toMatchObject({ code: 'INVALID_QUEUE_NAME' });
    await expect(h.manager.configure('bad', { maxDeliveries: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('applies the valid receipts of a batch and names the invalid ones', async () => {
    await h.manager.enqueue('mixed', [{ value: bytes('a') }, { value: bytes('b') }]);
    const got = await h.manager.receive('mixed', { max: 2 });
    await expect(h.manager.ack('mixed', [got[0]!.receipt, 'bogus'])).rejects.toMatchObject({
      code: 'UNKNOWN_RECEIPT',
      message: expect.stringContaining('the other 1 were acknowledged') as unknown,
    });
    expect((await h.manager.describe('mixed')).inFlight).toBe(1);
  });
});

describe('redelivery', () => {
  it('dead-letters a poison message after exactly maxDeliveries deliveries', async () => {
    await h.manager.configure('poison', { maxDeliveries: 3, backoff: { baseMs: 100, capMs: 1_000 } });
    const [id] = await h.manager.enqueue('poison', [{ value: bytes('boom') }]);
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      await h.advance(10_000);
      const [d] = await h.manager.receive('poison');
      if (!d) continue;
      seen.push(d.deliveries);
      await h.manager.nack('poison', [d.receipt], undefined, `failure ${d.deliveries}`);
    }
    expect(seen).toEqual([1, 2, 3]);
    const stats = await h.manager.describe('poison');
    expect([stats.depth, stats.deadLetters]).toEqual([0, 1]);
    const [dead] = await h.manager.deadLetters('poison');
    expect(dead).toMatchObject({ id, deliveries: 3, reason: 'MAX_DELIVERIES', lastError: 'failure 3' });
    expect(text(dead!.value)).toBe('boom');
    expect(dead!.deadLetteredAt).toBeGreaterThanOrEqual(dead!.enqueuedAt);
  });

  it('redelivers to another worker after the lease of a dead worker expires; the old receipt is refused', async () => {
    await h.manager.enqueue('lease', [{ value: bytes('job') }]);
    const [first] = await h.manager.receive('lease', { visibilityMs: 5_000, worker: 'a' });
    await h.advance(4_999);
    expect(await h.manager.receive('lease', { worker: 'b' })).toEqual([]);
    await h.advance(1);
    const [second] = await h.manager.receive('lease', { worker: 'b' });
    expect(second).toMatchObject({ id: first!.id, deliveries: 2 });
    await expect(h.manager.ack('lease', [first!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
    await h.manager.ack('lease', [second!.receipt]);
    expect((await h.manager.describe('lease')).redeliveries).toBe(1);
  });

  it('extends a lease so a long job is not redelivered', async () => {
    await h.manager.enqueue('long', [{ value: bytes('job') }]);
    const [d] = await h.manager.receive('long', { visibilityMs: 1_000 });
    for (let i = 0; i < 5; i++) {
      await h.advance(900);
      await h.manager.extend('long', [d!.receipt], 1_000);
    }
    expect(await h.manager.receive('long')).toEqual([]);
    await h.manager.ack('long', [d!.receipt]);
  });

  it('nack with a delay holds the message back that long', async () => {
    await h.manager.enqueue('later', [{ value: bytes('x') }]);
    const [d] = await h.manager.receive('later');
    await h.manager.nack('later', [d!.receipt], 2_000);
    expect((await h.manager.describe('later')).delayed).toBe(1);
    await h.advance(1_999);
    expect(await h.manager.receive('later')).toEqual([]);
    await h.advance(1);
    expect(values(await h.manager.receive('later'))).toEqual(['x']);
  });

  it('backs off by random(0, min(cap, base·2^(n−1))) using the injected random source', async () => {
    await h.cleanup();
    h = await queueHarness({ random: () => 0.5 });
    await h.manager.configure('jit', { maxDeliveries: 10, backoff: { baseMs: 100, capMs: 1_000 } });
    await h.manager.enqueue('jit', [{ value: bytes('x') }]);
    const expected = [50, 100, 200, 400, 500, 500]; // 0.5 × min(1000, 100·2^(n−1))
    for (const wait of expected) {
      const [d] = await h.manager.receive('jit');
      await h.manager.nack('jit', [d!.receipt]);
      await h.advance(wait - 1);
      expect(await h.manager.receive('jit')).toEqual([]);
      await h.advance(1);
      expect((await h.manager.describe('jit')).ready).toBe(1);
    }
  });
});

describe('delays, deadlines, priorities, TTL', () => {
  it('delivers a delayed message only once its delay has passed', async () => {
    await h.manager.enqueue('delay', [{ value: bytes('soon'), delayMs: 5_000 }, { value: bytes('now') }]);
    expect(values(await h.manager.receive('delay', { max: 10 }))).toEqual(['now']);
    await h.advance(5_000);
    expect(values(await h.manager.receive('delay', { max: 10 }))).toEqual(['soon']);
  });

  it('hands out the earliest deadline first under random deadlines (EDF)', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ deadlineIn: fc.integer({ min: 1, max: 1_000_000 }), priority: fc.integer({ min: 0, max: 9 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 1, max: 7 }),
        async (msgs, batch) => {
          const q = `edf-${round++}`;
          const base = h.now();
          await h.manager.enqueue(
            q,
            msgs.map((m, i) => ({ value: bytes(String(i)), deadline: base + m.deadlineIn, priority: m.priority })),
          );
          const order: number[] = [];
          for (;;) {
            const got = await h.manager.receive(q, { max: batch });
            if (got.length === 0) break;
            for (const d of got) order.push(d.deadline!);
            await h.manager.ack(q, got.map((d) => d.receipt));
          }
          expect(order).toHaveLength(msgs.length);
          expect(order).toEqual([...order].sort((a, b) => a - b));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('dead-letters messages whose deadline passed instead of delivering them late', async () => {
    const base = h.now();
    await h.manager.enqueue('dl', [
      { value: bytes('late'), deadline: base + 100 },
      { value: bytes('fine'), deadline: base + 10_000 },
      { value: bytes('late-delayed'), deadline: base + 200, delayMs: 500 },
    ]);
    await h.advance(1_000);
    expect(values(await h.manager.receive('dl', { max: 10 }))).toEqual(['fine']);
    const dead = await h.manager.deadLetters('dl');
    expect(dead.map((d) => [text(d.value), d.reason])).toEqual([
      ['late', 'DEADLINE_EXCEEDED'],
      ['late-delayed', 'DEADLINE_EXCEEDED'],
    ]);
  });

  it('serves higher priorities first, in enqueue order within a priority', async () => {
    await h.manager.enqueue('prio', [
      { value: bytes('low1') },
      { value: bytes('high1'), priority: 9 },
      { value: bytes('mid'), priority: 5 },
      { value: bytes('high2'), priority: 9 },
      { value: bytes('low2') },
    ]);
    expect(values(await h.manager.receive('prio', { max: 10 }))).toEqual(['high1', 'high2', 'mid', 'low1', 'low2']);
  });

  it('dead-letters a message whose TTL ran out before a worker took it', async () => {
    await h.manager.enqueue('ttl', [{ value: bytes('short'), ttlMs: 1_000 }, { value: bytes('long') }]);
    await h.advance(1_001);
    expect(values(await h.manager.receive('ttl', { max: 10 }))).toEqual(['long']);
    expect((await h.manager.deadLetters('ttl')).map((d) => d.reason)).toEqual(['EXPIRED']);
  });
});

describe('limits', () => {
  it('accepts a dedup id once within the window', async () => {
    await h.manager.configure('dedup', { dedupWindowMs: 10_000 });
    const a = await h.manager.enqueue('dedup', [{ value: bytes('1'), dedupId: 'x' }, { value: bytes('2'), dedupId: 'x' }]);
    expect(a[0]).toBe(a[1]);
    const b = await h.manager.enqueue('dedup', [{ value: bytes('3'), dedupId: 'x' }]);
    expect(b).toEqual([a[0]]);
    expect((await h.manager.describe('dedup')).depth).toBe(1);
    await h.reopen();
    expect(await h.manager.enqueue('dedup', [{ value: bytes('4'), dedupId: 'x' }])).toEqual([a[0]]);
    await h.advance(10_001);
    const c = await h.manager.enqueue('dedup', [{ value: bytes('5'), dedupId: 'x' }]);
    expect(c[0]).not.toBe(a[0]);
  });

  it('refuses enqueues past max_depth with QUEUE_FULL, or drops the oldest to the dead letters', async () => {
    await h.manager.configure('full', { maxDepth: 3 });
    await h.manager.enqueue('full', [{ value: bytes('1') }, { value: bytes('2') }, { value: bytes('3') }]);
    await expect(h.manager.enqueue('full', [{ value: bytes('4') }])).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await h.manager.configure('full', { overflow: 'drop_oldest' });
    await h.manager.enqueue('full', [{ value: bytes('4') }]);
    expect(values(await h.manager.receive('full', { max: 10 }))).toEqual(['2', '3', '4']);
    expect((await h.manager.deadLetters('full')).map((d) => [text(d.value), d.reason])).toEqual([['1', 'DROPPED']]);
  });

  it('bounds the payload bytes a queue holds by max_bytes', async () => {
    await h.manager.configure('bytes', { maxBytes: 1024 * 1024 });
    const big = Buffer.alloc(600 * 1024, 'a');
    await h.manager.enqueue('bytes', [{ value: big }]);
    expect((await h.manager.describe('bytes')).bytes).toBe(big.length);
    await expect(h.manager.enqueue('bytes', [{ value: big }])).rejects.toMatchObject({
      code: 'QUEUE_FULL',
      message: expect.stringContaining('max_bytes') as unknown,
    });
    await h.manager.configure('bytes', { overflow: 'drop_oldest' });
    await h.manager.enqueue('bytes', [{ value: Buffer.alloc(600 * 1024, 'b') }]);
    const got = await h.manager.receive('bytes', { max: 10 });
    expect(got.map((d) => d.value[0])).toEqual(['b'.charCodeAt(0)]);
    expect((await h.manager.deadLetters('bytes')).map((d) => d.reason)).toEqual(['DROPPED']);
    await h.manager.ack('bytes', [got[0]!.receipt]);
    expect((await h.manager.describe('bytes')).bytes).toBe(0);
  });

  it('bounds what one worker holds by max_in_flight_per_worker', async () => {
    await h.manager.configure('wip', { maxInFlightPerWorker: 2 });
    await h.manager.enqueue('wip', Array.from({ length: 5 }, (_, i) => ({ value: bytes(String(i)) })));
    const a = await h.manager.receive('wip', { max: 10, worker: 'a' });
    expect(a).toHaveLength(2);
    expect(await h.manager.receive('wip', { max: 10, worker: 'a' })).toHaveLength(0);
    expect(await h.manager.receive('wip', { max: 10, worker: 'b' })).toHaveLength(2);
    await h.manager.ack('wip', [a[0]!.receipt]);
    expect(await h.manager.receive('wip', { max: 10, worker: 'a' })).toHaveLength(1);
  });
});

describe('balance', () => {
  const parked = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  };

  it('round-robin: a burst is shared equally by the receivers waiting for it', async () => {
    await h.manager.configure('rr', { balance: 'round-robin' });
    const waiting = ['a', 'b', 'c'].map((worker) => h.manager.receive('rr', { max: 10, worker }, 10_000));
    await parked();
    await h.manager.enqueue('rr', Array.from({ length: 9 }, (_, i) => ({ value: bytes(String(i)) })));
    const got = await Promise.all(waiting);
    expect(got.map((g) => g.length)).toEqual([3, 3, 3]);
  });

  it('least-loaded: the waiting receiver with the fewest messages in flight is served first', async () => {
    await h.manager.configure('ll', { balance: 'least-loaded' });
    await h.manager.enqueue('ll', [{ value: bytes('x') }, { value: bytes('y') }]);
    expect(await h.manager.receive('ll', { max: 2, worker: 'busy' })).toHaveLength(2);
    const busy = h.manager.receive('ll', { max: 5, worker: 'busy' }, 300);
    const idle = h.manager.receive('ll', { max: 5, worker: 'idle' }, 300);
    await parked();
    await h.manager.enqueue('ll', [{ value: bytes('z') }]);
    expect((await idle).map((d) => text(d.value))).toEqual(['z']);
    expect(await busy).toEqual([]);
  });
});

describe('key-sticky', () => {
  it('keeps per-key order across 4 concurrent workers, one message per key at a time', async () => {
    await h.cleanup();
    h = await queueHarness({ timers: true });
    await h.manager.configure('sticky', { balance: 'key-sticky', backoff: { baseMs: 1, capMs: 1 }, maxDeliveries: 100 });
    const keys = 8;
    const perKey = 40;
    const msgs = [];
    for (let i = 0; i < perKey; i++) for (let k = 0; k < keys; k++) msgs.push({ value: bytes(`${k}:${i}`), key: `k${k}` });
    await h.manager.enqueue('sticky', msgs);
    const done = new Map<string, number[]>();
    const busy = new Set<string>();
    let violations = 0;
    let total = 0;
    let step = 0;
    const worker = async (name: string): Promise<void> => {
      while (total < keys * perKey) {
        const got = await h.manager.receive('sticky', { max: 3, worker: name }, 20);
        for (const d of got) {
          const [k, i] = text(d.value).split(':');
          if (busy.has(k!)) violations++;
          busy.add(k!);
          await new Promise((r) => setImmediate(r));
          busy.delete(k!);
          // Every 7th attempt fails: the retry must still come before the key's next message.
          if (step++ % 7 === 3) {
            await h.manager.nack('sticky', [d.receipt], 0);
            continue;
          }
          const list = done.get(k!) ?? [];
          list.push(Number(i));
          done.set(k!, list);
          total++;
          await h.manager.ack('sticky', [d.receipt]);
        }
      }
    };
    await Promise.all(['w1', 'w2', 'w3', 'w4'].map(worker));
    expect(violations).toBe(0);
    for (let k = 0; k < keys; k++) expect(done.get(`${k}`)).toEqual(Array.from({ length: perKey }, (_, i) => i));
  });
});

describe('dead letters', () => {
  it('lists, redrives (by id, by age, all) and deletes dead letters', async () => {
    await h.manager.enqueue('dlq', ['a', 'b', 'c', 'd'].map((v) => ({ value: bytes(v) })));
    const got = await h.manager.receive('dlq', { max: 4, visibilityMs: 600_000 });
    await h.manager.reject('dlq', [got[0]!.receipt, got[1]!.receipt], 'bad input');
    await h.advance(60_000);
    await h.manager.reject('dlq', [got[2]!.receipt, got[3]!.receipt]);
    const dead = await h.manager.deadLetters('dlq');
    expect(dead.map((d) => [text(d.value), d.reason, d.lastError])).toEqual([
      ['a', 'REJECTED', 'bad input'],
      ['b', 'REJECTED', 'bad input'],
      ['c', 'REJECTED', null],
      ['d', 'REJECTED', null],
    ]);
    expect((await h.manager.deadLetters('dlq', 2, dead[1]!.id)).map((d) => text(d.value))).toEqual(['c', 'd']);
    expect(await h.manager.redrive('dlq', { ids: [dead[0]!.id] })).toHaveLength(1);
    expect(await h.manager.redrive('dlq', { olderThanMs: 30_000 })).toHaveLength(1);
    expect(values(await h.manager.receive('dlq', { max: 10 }))).toEqual(['a', 'b']);
    expect(await h.manager.deleteDeadLetters('dlq', { all: true })).toBe(2);
    expect(await h.manager.deadLetters('dlq')).toEqual([]);
    await h.reopen();
    expect(await h.manager.deadLetters('dlq')).toEqual([]);
    expect((await h.manager.describe('dlq')).ready).toBe(2); // the two redriven, whose leases died with the process
  });
});

describe('recovery and compaction', () => {
  it('after a restart: acked gone, in-flight ready with the delivery counted, delayed still delayed, dead letters kept', async () => {
    await h.manager.configure('rec', { maxDeliveries: 2 });
    await h.manager.enqueue('rec', [{ value: bytes('acked') }, { value: bytes('inflight') }, { value: bytes('ready') }]);
    await h.manager.enqueue('rec', [{ value: bytes('delayed'), delayMs: 60_000 }, { value: bytes('exhausted') }]);
    const got = await h.manager.receive('rec', { max: 2 });
    await h.manager.ack('rec', [got[0]!.receipt]);
    const [ex] = await h.manager.receive('rec', { max: 1 }); // "ready"
    await h.manager.nack('rec', [ex!.receipt], 0);
    const again = await h.manager.receive('rec', { max: 5 }); // ready (2nd), exhausted (1st)
    expect(values(again)).toEqual(['ready', 'exhausted']);
    await h.manager.reject('rec', [again[1]!.receipt], 'no');
    await h.reopen();
    const stats = await h.manager.describe('rec');
    expect([stats.ready, stats.delayed, stats.inFlight, stats.deadLetters]).toEqual([1, 1, 0, 2]);
    // "inflight" had 1 delivery → ready; "ready" had 2 = maxDeliveries while in flight → dead-lettered.
    const got2 = await h.manager.receive('rec', { max: 10 });
    expect(got2.map((d) => [text(d.value), d.deliveries])).toEqual([['inflight', 2]]);
    const dead = await h.manager.deadLetters('rec');
    expect(dead.map((d) => [text(d.value), d.reason])).toEqual([
      ['exhausted', 'REJECTED'],
      ['ready', 'MAX_DELIVERIES'],
    ]);
    await h.advance(60_000);
    expect(values(await h.manager.receive('rec'))).toEqual(['delayed']);
  });

  it('truncates finished messages from the journal and carries old live ones forward', async () => {
    await h.manager.configure('compact', { maxDepth: 100_000 });
    await h.manager.enqueue('compact', [{ value: bytes('old-delayed'), delayMs: 3_600_000 }]);
    const payload = Buffer.alloc(1_000, 'x');
    for (let round = 0; round < 30; round++) {
      await h.manager.enqueue('compact', Array.from({ length: 1_000 }, () => ({ value: payload })));
      for (;;) {
        const got = await h.manager.receive('compact', { max: 1_000 });
        if (got.length === 0) break;
        await h.manager.ack('compact', got.map((d) => d.receipt));
      }
    }
    await h.manager.compact();
    await h.manager.compact();
    const w = await h.engine.watermarks(journalTopic('compact'), 0);
    expect(w.lowWatermark).toBeGreaterThan(10_000);
    await h.reopen();
    const stats = await h.manager.describe('compact');
    expect([stats.depth, stats.delayed]).toEqual([1, 1]);
    await h.advance(3_600_000);
    expect(values(await h.manager.receive('compact'))).toEqual(['old-delayed']);
  });
});
