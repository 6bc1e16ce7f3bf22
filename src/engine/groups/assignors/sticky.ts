import {
  assignableTopics,
  compareStrings,
  sortById,
  type AssignableTopic,
  type AssignorInput,
  type AssignorMember,
  type TopicAssignment,
} from './assignor.js';

interface Slot {
  readonly topic: string;
  readonly partition: number;
  /** Kept from the previous assignment: moving it costs a handover, moving a fresh slot does not. */
  readonly kept: boolean;
}

/** Partitions per member while the assignment is being built. */
type Holdings = Map<string, Slot[]>;

/**
 * Keeps every partition with its previous owner while that member is still subscribed to the
 * topic, then balances while moving as few kept partitions as possible.
 *
 * When every member subscribes to every topic, member counts end up differing by at most one and
 * the number of moved partitions is the minimum any balanced assignment needs: the `count % n`
 * larger quotas go to the members holding the most. With mixed subscriptions an exact minimum is
 * expensive, so it settles for a local balance: no partition could move to another subscriber of
 * its topic whose count is two or more lower.
 */
export function stickyAssign(input: AssignorInput): TopicAssignment {
  const members = sortById(input.members);
  const topics = assignableTopics(input);
  const byId = new Map(members.map((m) => [m.id, m]));
  const holdings: Holdings = new Map(members.map((m) => [m.id, []]));
  const free: Slot[] = [];
  for (const { topic, count } of topics) {
    const previous = input.previous.get(topic);
    for (let partition = 0; partition < count; partition++) {
      const id = previous?.[partition];
      const held = id === undefined || !byId.get(id)?.topics.has(topic) ? undefined : holdings.get(id);
      if (held) held.push({ topic, partition, kept: true });
      else free.push({ topic, partition, kept: false });
    }
  }
  const uniform = members.every((m) => topics.every((t) => m.topics.has(t.topic)));
  if (uniform) balanceByQuota(members, holdings, free);
  else balanceLocally(topics, holdings, free);
  return toAssignment(topics, holdings);
}

function held(holdings: Holdings, member: AssignorMember): Slot[] {
  const slots = holdings.get(member.id);
  if (!slots) throw new Error(`sticky assignor: no holdings for member ${member.id}`);
  return slots;
}

function balanceByQuota(members: readonly AssignorMember[], holdings: Holdings, free: Slot[]): void {
  if (members.length === 0) return;
  const total = free.length + members.reduce((n, m) => n + held(holdings, m).length, 0);
  const base = Math.floor(total / members.length);
  const extra = total % members.length;
  // The larger quotas go to the members holding most, which maximises what stays in place.
  const byLoad = [...members].sort(
    (a, b) => held(holdings, b).length - held(holdings, a).length || compareStrings(a.id, b.id),
  );
  const quota = new Map(byLoad.map((m, i) => [m.id, base + (i < extra ? 1 : 0)]));
  for (const member of members) {
    const slots = held(holdings, member);
    const limit = quota.get(member.id) ?? 0;
    while (slots.length > limit) free.push(slots.pop() as Slot);
  }
  let next = 0;
  for (const member of members) {
    const slots = held(holdings, member);
    const limit = quota.get(member.id) ?? 0;
    while (slots.length < limit) {
      const slot = free[next++];
      if (!slot) throw new Error('sticky assignor: quotas exceed partitions');
      slots.push(slot);
    }
  }
}

function balanceLocally(topics: readonly AssignableTopic[], holdings: Holdings, free: readonly Slot[]): void {
  const subscribers = new Map(topics.map((t) => [t.topic, t.subscribers]));
  const load = (m: AssignorMember): number => held(holdings, m).length;
  for (const slot of free) {
    const candidates = subscribers.get(slot.topic) ?? [];
    const target = pick(candidates, (a, b) => load(a) < load(b));
    if (target) held(holdings, target).push(slot);
  }
  // Every move lowers the sum of squared loads, so this terminates.
  let moved = true;
  while (moved) {
    moved = false;
    for (const { topic, subscribers: subs } of topics) {
      for (;;) {
        const receiver = pick(subs, (a, b) => load(a) < load(b));
        const donor = pick(
          subs.filter((m) => held(holdings, m).some((s) => s.topic === topic)),
          (a, b) => load(a) > load(b),
        );
        if (!receiver || !donor || load(donor) - load(receiver) < 2) break;
        const slots = held(holdings, donor);
        const index = lastIndexOf(slots, (s) => s.topic === topic && !s.kept);
        const from = index >= 0 ? index : lastIndexOf(slots, (s) => s.topic === topic);
        const [slot] = slots.splice(from, 1);
        if (slot) held(holdings, receiver).push(slot);
        moved = true;
      }
    }
  }
}

/** The first member (members are sorted by id) that no later one beats. */
function pick(members: readonly AssignorMember[], better: (a: AssignorMember, b: AssignorMember) => boolean): AssignorMember | undefined {
  let best: AssignorMember | undefined;
  for (const m of members) if (!best || better(m, best)) best = m;
  return best;
}

function lastIndexOf<T>(items: readonly T[], match: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (match(items[i] as T)) return i;
  return -1;
}

function toAssignment(topics: readonly AssignableTopic[], holdings: Holdings): TopicAssignment {
  const rows = new Map<string, Array<string | undefined>>(topics.map((t) => [t.topic, new Array<string | undefined>(t.count).fill(undefined)]));
  for (const [id, slots] of holdings) {
    for (const slot of slots) {
      const row = rows.get(slot.topic);
      if (row) row[slot.partition] = id;
    }
  }
  const out = new Map<string, string[]>();
  for (const [topic, row] of rows) {
    out.set(
      topic,
      row.map((id, p) => {
        if (id === undefined) throw new Error(`sticky assignor left ${topic}/${p} unassigned`);
        return id;
      }),
    );
  }
  return out;
}
