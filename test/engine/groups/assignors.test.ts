import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AssignmentStrategy } from '../../../src/engine/types.js';
import {
  assignorFor,
  rangeAssign,
  roundRobinAssign,
  stickyAssign,
  type AssignorInput,
  type AssignorMember,
  type TopicAssignment,
} from '../../../src/engine/groups/assignors/index.js';

const member = (id: string, ...topics: string[]): AssignorMember => ({ id, topics: new Set(topics) });
const input = (members: AssignorMember[], partitions: Record<string, number>, previous: TopicAssignment = new Map()): AssignorInput => ({
  members,
  partitions: new Map(Object.entries(partitions)),
  previous,
});
const plain = (a: TopicAssignment): Record<string, readonly string[]> => Object.fromEntries(a);

function loads(assignment: TopicAssignment): Map<string, number> {
  const out = new Map<string, number>();
  for (const owners of assignment.values()) for (const id of owners) out.set(id, (out.get(id) ?? 0) + 1);
  return out;
}

/** Max minus min partitions per member, counting members that got nothing. */
function spread(assignment: TopicAssignment, members: readonly AssignorMember[]): number {
  const counts = loads(assignment);
  const values = members.map((m) => counts.get(m.id) ?? 0);
  return Math.max(...values) - Math.min(...values);
}

/** Partitions whose previous owner could have kept them (still a subscriber) but did not. */
function moves(input: AssignorInput, result: TopicAssignment): number {
  let n = 0;
  for (const [topic, owners] of result) {
    owners.forEach((id, p) => {
      const before = input.previous.get(topic)?.[p];
      const keeper = input.members.find((m) => m.id === before);
      if (before !== undefined && keeper?.topics.has(topic) && before !== id) n++;
    });
  }
  return n;
}

describe('range', () => {
  it('gives contiguous ranges per topic, extra partitions to the lowest ids', () => {
    const result = rangeAssign(input([member('b', 't', 'u'), member('a', 't', 'u'), member('c', 't')], { t: 7, u: 3 }));
    expect(plain(result)).toEqual({ t: ['a', 'a', 'a', 'b', 'b', 'c', 'c'], u: ['a', 'a', 'b'] });
  });

  it('leaves out topics without partitions or without subscribers', () => {
    const result = rangeAssign(input([member('a', 't', 'empty')], { t: 2, empty: 0, orphan: 4 }));
    expect([...result.keys()]).toEqual(['t']);
  });
});

describe('round-robin', () => {
  it('deals all topic-partitions in order over members sorted by id', () => {
    const result = roundRobinAssign(input([member('b', 't', 'u'), member('a', 't', 'u')], { t: 3, u: 2 }));
    expect(plain(result)).toEqual({ t: ['a', 'b', 'a'], u: ['b', 'a'] });
  });

  it('skips members not subscribed to the topic', () => {
    const result = roundRobinAssign(input([member('a', 't'), member('b', 'u'), member('c', 't', 'u')], { t: 3, u: 2 }));
    expect(plain(result)).toEqual({ t: ['a', 'c', 'a'], u: ['b', 'c'] });
  });
});

describe('sticky', () => {
  it('moves only what balance needs when a member joins', () => {
    const previous = new Map([['t', ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b']]]);
    const result = stickyAssign(input([member('a', 't'), member('b', 't'), member('c', 't')], { t: 8 }, previous));
    const owners = result.get('t') ?? [];
    expect(owners.filter((id) => id === 'c')).toHaveLength(2);
    // 6 of a's and b's 8 partitions stay where they were.
    expect(owners.filter((id, p) => id === previous.get('t')?.[p])).toHaveLength(6);
  });

  it("hands only a departed member's partitions to the others", () => {
    const previous = new Map([['t', ['a', 'b', 'c', 'a', 'b', 'c']]]);
    const result = stickyAssign(input([member('a', 't'), member('c', 't')], { t: 6 }, previous));
    expect(plain(result)).toEqual({ t: ['a', 'a', 'c', 'a', 'c', 'c'] });
  });

  it('takes partitions away from a member that unsubscribed from their topic', () => {
    const previous = new Map([
      ['t', ['a', 'a']],
      ['u', ['a', 'b']],
    ]);
    const result = stickyAssign(input([member('a', 'u'), member('b', 't', 'u')], { t: 2, u: 2 }, previous));
    expect(result.get('t')).toEqual(['b', 'b']);
    expect(result.get('u')).toEqual(['a', 'a']);
  });

  it('assigns fresh partitions to the least loaded subscriber', () => {
    const previous = new Map([['t', ['a', 'a', 'a']]]);
    const result = stickyAssign(input([member('a', 't', 'u'), member('b', 'u')], { t: 3, u: 3 }, previous));
    expect(plain(result)).toEqual({ t: ['a', 'a', 'a'], u: ['b', 'b', 'b'] });
  });
});

const strategies: AssignmentStrategy[] = ['range', 'round-robin', 'sticky'];

/** Members (1-8, unique ids), topics (1-4 with 0-24 partitions), subscriptions and a random previous assignment. */
const arbitraryInput = (uniform: boolean): fc.Arbitrary<AssignorInput> =>
  fc
    .record({
      ids: fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,6}$/), { minLength: 1, maxLength: 8 }),
      counts: fc.array(fc.nat({ max: 24 }), { minLength: 1, maxLength: 4 }),
      seed: fc.array(fc.nat(), { minLength: 200, maxLength: 200 }),
    })
    .map(({ ids, counts, seed }) => {
      let i = 0;
      const rand = (): number => seed[i++ % seed.length] ?? 0;
      const topics = counts.map((_, t) => `topic-${t}`);
      const members = ids.map((id) => {
        if (uniform) return member(id, ...topics);
        const mine = topics.filter(() => rand() % 2 === 0);
        return member(id, ...(mine.length > 0 ? mine : [topics[rand() % topics.length] ?? 'topic-0']));
      });
      // Previous owners include strangers (members that left) and gaps.
      const candidates = [...ids, 'gone-1', 'gone-2'];
      const previous = new Map(
        topics.map((t, ti) => [
          t,
          Array.from({ length: counts[ti] ?? 0 }, () => candidates[rand() % (candidates.length + 1)]).map((id) => id ?? 'gone-3'),
        ]),
      );
      return { members, partitions: new Map(topics.map((t, ti) => [t, counts[ti] ?? 0])), previous };
    });

describe('assignor properties', () => {
  for (const strategy of strategies) {
    it(`${strategy}: assigns every partition exactly once to a subscriber, deterministically`, () => {
      fc.assert(
        fc.property(arbitraryInput(false), (inp) => {
          const result = assignorFor(strategy)(inp);
          for (const [topic, count] of inp.partitions) {
            const subscribed = inp.members.filter((m) => m.topics.has(topic));
            if (count === 0 || subscribed.length === 0) {
              expect(result.has(topic)).toBe(false);
              continue;
            }
            const owners = result.get(topic) ?? [];
            expect(owners).toHaveLength(count);
            for (const id of owners) expect(subscribed.map((m) => m.id)).toContain(id);
          }
          for (const topic of result.keys()) expect(inp.partitions.has(topic)).toBe(true);
          const shuffled = { ...inp, members: [...inp.members].reverse() };
          expect(plain(assignorFor(strategy)(shuffled))).toEqual(plain(result));
        }),
      );
    });
  }

  it('range is balanced within one topic: per-topic counts differ by at most one', () => {
    fc.assert(
      fc.property(arbitraryInput(false), (inp) => {
        const result = rangeAssign(inp);
        for (const [topic, owners] of result) {
          const subscribed = inp.members.filter((m) => m.topics.has(topic));
          expect(spread(new Map([[topic, owners]]), subscribed)).toBeLessThanOrEqual(1);
        }
      }),
    );
  });

  for (const strategy of ['round-robin', 'sticky'] as const) {
    it(`${strategy} is balanced when every member subscribes to every topic`, () => {
      fc.assert(
        fc.property(arbitraryInput(true), (inp) => {
          expect(spread(assignorFor(strategy)(inp), inp.members)).toBeLessThanOrEqual(1);
        }),
      );
    });
  }

  it('sticky moves the fewest partitions a balanced assignment allows', () => {
    fc.assert(
      fc.property(arbitraryInput(true), (inp) => {
        const result = stickyAssign(inp);
        // Lower bound: members keep at most their quota, and the larger quotas are best spent on
        // the members that could keep most.
        const keepable = new Map(inp.members.map((m) => [m.id, 0]));
        let total = 0;
        for (const [topic, count] of inp.partitions) {
          total += count;
          for (let p = 0; p < count; p++) {
            const id = inp.previous.get(topic)?.[p];
            if (id !== undefined && keepable.has(id)) keepable.set(id, (keepable.get(id) ?? 0) + 1);
          }
        }
        const n = inp.members.length;
        const kept = [...keepable.values()].sort((a, b) => b - a);
        const minimum = kept.reduce((sum, c, i) => sum + Math.max(0, c - (Math.floor(total / n) + (i < total % n ? 1 : 0))), 0);
        expect(moves(inp, result)).toBe(minimum);
      }),
    );
  });

  it('sticky keeps a valid, balanced previous assignment unchanged', () => {
    fc.assert(
      fc.property(arbitraryInput(true), (inp) => {
        const balanced = roundRobinAssign(inp);
        expect(plain(stickyAssign({ ...inp, previous: balanced }))).toEqual(plain(balanced));
      }),
    );
  });

  it('sticky with mixed subscriptions leaves no partition that could move to a subscriber two or more lighter', () => {
    fc.assert(
      fc.property(arbitraryInput(false), (inp) => {
        const result = stickyAssign(inp);
        const counts = loads(result);
        for (const [topic, owners] of result) {
          const subscribers = inp.members.filter((m) => m.topics.has(topic));
          const lightest = Math.min(...subscribers.map((m) => counts.get(m.id) ?? 0));
          for (const id of owners) expect((counts.get(id) ?? 0) - lightest).toBeLessThanOrEqual(1);
        }
      }),
    );
  });
});
