/**
 * Model-based check of the journal and its replay: random sequences of enqueues, receives, acks,
 * nacks, rejects, clock moves and reopens, against a plain model of what every message's state
 * must be. After every reopen the queue must hold exactly the model's live messages and dead
 * letters — an acknowledged message never comes back, none is lost.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/queues/index.js';
import { journalTopic } from '../../src/queues/engine-storage.js';
import { bytes, queueHarness, type QueueHarness } from './harness.js';

type Op =
  | { kind: 'enqueue'; count: number; delayMs: number }
  | { kind: 'receive'; max: number }
  | { kind: 'ack' | 'nack' | 'reject'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'compact' }
  | { kind: 'reopen' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('enqueue' as const), count: fc.integer({ min: 1, max: 8 }), delayMs: fc.constantFrom(0, 0, 0, 500, 5_000) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('receive' as const), max: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('ack' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('nack' as const, 'reject' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(100, 1_000, 10_000) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'compact' as const }) },
);

const MAX_DELIVERIES = 3;

interface ModelMessage {
  state: 'live' | 'acked' | 'dead';
  deliveries: number;
  inFlight: Delivery | null;
}

let h: QueueHarness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

describe('queue recovery (model-based)', () => {
  it('after any sequence of operations and reopens, holds exactly the live messages and dead letters', async () => {
    let truncated = 0;
    let carried = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 60, maxLength: 200 }), async (ops) => {
        await h?.cleanup();
        // Tiny segments and an eager carry-forward, so truncation and C records happen here too.
        h = await queueHarness({ carryForwardAfter: 8 }, 1024);
        const q = 'model';
        await h.manager.configure(q, { maxDeliveries: MAX_DELIVERIES, visibilityMs: 3_600_000, backoff: { baseMs: 10, capMs: 10 } });
        const model = new Map<string, ModelMessage>();
        let seq = 0;
        const inFlight = (): ModelMessage[] => [...model.values()].filter((m) => m.inFlight !== null);

        for (const o of ops) {
          switch (o.kind) {
            case 'enqueue': {
              const ids = await h.manager.enqueue(
                q,
                Array.from({ length: o.count }, () => ({ value: bytes(`m${seq++}`), delayMs: o.delayMs })),
              );
              for (const id of ids) model.set(id, { state: 'live', deliveries: 0, inFlight: null });
              break;
            }
            case 'receive': {
              for (const d of await h.manager.receive(q, { max: o.max })) {
                const m = model.get(d.id)!;
                expect(m.state).toBe('live');
                expect(m.inFlight).toBeNull();
                m.deliveries++;
                expect(d.deliveries).toBe(m.deliveries);
                m.inFlight = d;
              }
              break;
            }
            case 'ack':
            case 'nack':
            case 'reject': {
              const held = inFlight();
              if (held.length === 0) break;
              const m = held[o.pick % held.length]!;
              const receipt = m.inFlight!.receipt;
              m.inFlight = null;
              if (o.kind === 'ack') {
                await h.manager.ack(q, [receipt]);
                m.state = 'acked';
              } else if (o.kind === 'reject') {
                await h.manager.reject(q, [receipt], 'rejected');
                m.state = 'dead';
              } else {
                await h.manager.nack(q, [receipt], 0, 'failed');
                if (m.deliveries >= MAX_DELIVERIES) m.state = 'dead';
              }
              break;
            }
            case 'advance':
              await h.advance(o.ms);
              break;
            case 'compact': {
              await h.manager.compact();
              const low = (await h.engine.watermarks(journalTopic(q), 0)).lowWatermark;
              if (low > 0) truncated++;
              // The journal was cut past a message still live: only its C record can bring it back.
              if ([...model.entries()].some(([id, m]) => m.state === 'live' && Number(id) < low)) carried++;
              break;
            }
            case 'reopen':
              await h.reopen();
              // Leases die with the process: in-flight messages are ready again, delivery counted.
              for (const m of model.values()) {
                if (m.inFlight === null) continue;
                m.inFlight = null;
                if (m.deliveries >= MAX_DELIVERIES) m.state = 'dead';
              }
              await check();
              break;
          }
        }
        await h.reopen();
        for (const m of model.values()) {
          if (m.inFlight === null) continue;
          m.inFlight = null;
          if (m.deliveries >= MAX_DELIVERIES) m.state = 'dead';
        }
        await check();

        async function check(): Promise<void> {
          const stats = await h!.manager.describe(q);
          const live = [...model.entries()].filter(([, m]) => m.state === 'live');
          const dead = [...model.entries()].filter(([, m]) => m.state === 'dead').map(([id]) => id);
          expect(stats.depth).toBe(live.length);
          expect(stats.inFlight).toBe(0);
          expect((await h!.manager.deadLetters(q, 1_000)).map((d) => d.id).sort()).toEqual(dead.sort());
        }

        // Finally everything live is still deliverable, with its delivery count, exactly once.
        await h.advance(60_000);
        const drained = new Map<string, number>();
        for (;;) {
          const got = await h.manager.receive(q, { max: 100 });
          if (got.length === 0) break;
          for (const d of got) {
            expect(drained.has(d.id)).toBe(false);
            drained.set(d.id, d.deliveries);
          }
          await h.manager.ack(q, got.map((d) => d.receipt));
        }
        const expected = new Map([...model.entries()].filter(([, m]) => m.state === 'live').map(([id, m]) => [id, m.deliveries + 1]));
        expect(drained).toEqual(expected);
      }),
      { numRuns: Number(process.env["QUEUE_MODEL_RUNS"] ?? 30), seed: Number(process.env["QUEUE_MODEL_SEED"] ?? 4) },
    );
    // The runs did exercise truncation and carrying live messages past it.
    expect(truncated).toBeGreaterThan(0);
    expect(carried).toBeGreaterThan(0);
  }, 120_000);
});
