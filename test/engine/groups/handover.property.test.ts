/**
 * Random sequences of joins, rejoins, heartbeats, leaves and clock jumps, checking the guarantee
 * clients rely on: what live members were last told they own never overlaps, and a member can
 * always commit what it was last told it owns.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnknownMemberError } from '../../../src/engine/errors.js';
import type { AssignmentStrategy, MemberAssignment } from '../../../src/engine/types.js';
import { fixture, partitionsOf } from './helpers.js';

const TOPICS = { a: 3, b: 5 } as const;
const SESSION_MS = 3000;
type Topic = keyof typeof TOPICS;

type Op =
  | { readonly type: 'join'; readonly topics: Topic[] }
  | { readonly type: 'rejoin'; readonly member: number; readonly topics: Topic[] }
  | { readonly type: 'heartbeat'; readonly member: number }
  | { readonly type: 'leave'; readonly member: number }
  | { readonly type: 'advance'; readonly ms: number };

const topicsArb = fc.subarray<Topic>(['a', 'b'], { minLength: 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: topicsArb.map((topics) => ({ type: 'join' as const, topics })) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('rejoin' as const), member: fc.nat(7), topics: topicsArb }) },
  { weight: 5, arbitrary: fc.record({ type: fc.constant('heartbeat' as const), member: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('leave' as const), member: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: SESSION_MS + 500 }) }) },
);

async function run(strategy: AssignmentStrategy, ops: readonly Op[]): Promise<void> {
  const { coordinator, clock } = await fixture(TOPICS);
  /** Every member ever created, by index; and what each was last told it owns. */
  const ids: string[] = [];
  const lastSeen = new Map<string, string[]>();
  const subscriptions = new Map<string, Topic[]>();
  const see = (view: MemberAssignment): void => void lastSeen.set(view.memberId, partitionsOf(view.assignment));
  const pick = (i: number): string | undefined => ids[i % Math.max(1, ids.length)];

  try {
    for (const op of ops) {
      switch (op.type) {
        case 'join': {
          const view = await coordinator.join({ group: 'g', topics: op.topics, sessionTimeoutMs: SESSION_MS, strategy });
          ids.push(view.memberId);
          subscriptions.set(view.memberId, op.topics);
          see(view);
          break;
        }
        case 'rejoin':
        case 'heartbeat': {
          const id = pick(op.member);
          if (id === undefined || !lastSeen.has(id)) break;
          try {
            const view =
              op.type === 'rejoin'
                ? await coordinator.join({ group: 'g', memberId: id, topics: op.topics, sessionTimeoutMs: SESSION_MS })
                : await coordinator.heartbeat('g', id);
            if (view.memberId !== id) {
              // It had expired: it came back as a new member.
              lastSeen.delete(id);
              ids.push(view.memberId);
            }
            if (op.type === 'rejoin') subscriptions.set(view.memberId, op.topics);
            see(view);
          } catch (err) {
            if (!(err instanceof UnknownMemberError)) throw err;
            lastSeen.delete(id); // It learns it expired and stops consuming.
          }
          break;
        }
        case 'leave': {
          const id = pick(op.member);
          if (id === undefined) break;
          await coordinator.leave('g', id);
          lastSeen.delete(id);
          break;
        }
        case 'advance':
          clock.advance(op.ms);
          break;
      }

      const live = new Set((await coordinator.describe('g')).members.map((m) => m.memberId));
      for (const id of [...lastSeen.keys()]) if (!live.has(id)) lastSeen.delete(id); // expired
      const claimed = new Map<string, string>();
      for (const [id, partitions] of lastSeen) {
        for (const p of partitions) {
          expect(claimed.get(p), `${p} claimed by two live members`).toBeUndefined();
          claimed.set(p, id);
        }
      }
      for (const [id, partitions] of lastSeen) {
        const commits = partitions.map((p) => {
          const [topic = '', partition = ''] = p.split('/');
          return { topic, partition: Number(partition), offset: 1 };
        });
        await coordinator.commit('g', commits, { memberId: id, generation: 0 });
      }
    }

    // With no further changes, two rounds of heartbeats settle every handover.
    const members = (await coordinator.describe('g')).members.map((m) => m.memberId);
    for (let round = 0; round < 2; round++) for (const id of members) see(await coordinator.heartbeat('g', id));
    const expected = new Set<string>();
    for (const id of members) {
      for (const topic of subscriptions.get(id) ?? []) for (let p = 0; p < TOPICS[topic]; p++) expected.add(`${topic}/${p}`);
    }
    const owned = members.flatMap((id) => lastSeen.get(id) ?? []);
    expect(owned.sort()).toEqual([...expected].sort());
    for (const id of members) {
      for (const p of lastSeen.get(id) ?? []) expect(subscriptions.get(id)).toContain(p.split('/')[0]);
    }
  } finally {
    await coordinator.close();
  }
}

describe('partition handover', () => {
  for (const strategy of ['sticky', 'range', 'round-robin'] as const) {
    it(`${strategy}: live members are never told they own the same partition, and converge`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => run(strategy, ops)),
        { numRuns: 150 },
      );
    });
  }
});
