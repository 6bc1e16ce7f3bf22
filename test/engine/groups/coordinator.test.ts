import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_SESSION_TIMEOUT_MS, MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS } from '../../../src/engine/defaults.js';
import { GroupCoordinator } from '../../../src/engine/groups/index.js';
import { fixture, partitionsOf, type Fixture } from './helpers.js';

let open: GroupCoordinator[] = [];
async function setup(topics: Record<string, number>, options: Parameters<typeof fixture>[1] = {}): Promise<Fixture> {
  const f = await fixture(topics, options);
  open.push(f.coordinator);
  return f;
}

afterEach(async () => {
  await Promise.all(open.map((c) => c.close()));
  open = [];
  vi.useRealTimers();
});

describe('GroupCoordinator membership', () => {
  it('gives the first member every partition and derives the heartbeat interval', async () => {
    const { coordinator } = await setup({ orders: 4 });
    const a = await coordinator.join({ group: 'g', topics: ['orders'], sessionTimeoutMs: 6000 });
    expect(partitionsOf(a.assignment)).toEqual(['orders/0', 'orders/1', 'orders/2', 'orders/3']);
    expect(a.generation).toBe(1);
    expect(a.sessionTimeoutMs).toBe(6000);
    expect(a.heartbeatIntervalMs).toBe(2000);
    expect(a.memberId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('clamps session timeouts to the allowed range', async () => {
    const { coordinator } = await setup({ t: 1 });
    const low = await coordinator.join({ group: 'g', topics: ['t'], sessionTimeoutMs: 1 });
    const high = await coordinator.join({ group: 'g', topics: ['t'], sessionTimeoutMs: 10 ** 9 });
    const plain = await coordinator.join({ group: 'g', topics: ['t'] });
    expect([low.sessionTimeoutMs, high.sessionTimeoutMs, plain.sessionTimeoutMs]).toEqual([
      MIN_SESSION_TIMEOUT_MS,
      MAX_SESSION_TIMEOUT_MS,
      DEFAULT_SESSION_TIMEOUT_MS,
    ]);
  });

  it('hands a moving partition to the new member only after the old owner heartbeats', async () => {
    const { coordinator } = await setup({ orders: 4 });
    const a = await coordinator.join({ group: 'g', topics: ['orders'] });
    const b = await coordinator.join({ group: 'g', topics: ['orders'] });
    expect(b.generation).toBe(2);
    // Revoked from a at once, but not yet given to b.
    expect(b.assignment).toEqual([]);
    const bEarly = await coordinator.heartbeat('g', b.memberId);
    expect(bEarly.assignment).toEqual([]);
    const described = await coordinator.describe('g');
    expect(described.members.find((m) => m.memberId === a.memberId)?.assignment).toHaveLength(2);

    const aAfter = await coordinator.heartbeat('g', a.memberId);
    const bAfter = await coordinator.heartbeat('g', b.memberId);
    expect(aAfter.assignment).toHaveLength(2);
    expect(bAfter.assignment).toHaveLength(2);
    expect([...partitionsOf(aAfter.assignment), ...partitionsOf(bAfter.assignment)].sort()).toEqual([
      'orders/0',
      'orders/1',
      'orders/2',
      'orders/3',
    ]);
    expect(bAfter.generation).toBe(2);
  });

  it('gives partitions nobody owns to a joining member at once', async () => {
    const { coordinator } = await setup({ t: 2, u: 2 });
    await coordinator.join({ group: 'g', topics: ['t'] });
    const b = await coordinator.join({ group: 'g', topics: ['u'] });
    expect(partitionsOf(b.assignment)).toEqual(['u/0', 'u/1']);
  });

  it('moves the partitions of an expired member to the others', async () => {
    const { coordinator, clock } = await setup({ orders: 4 });
    const a = await coordinator.join({ group: 'g', topics: ['orders'], sessionTimeoutMs: 3000 });
    const b = await coordinator.join({ group: 'g', topics: ['orders'], sessionTimeoutMs: 3000 });
    clock.advance(2000);
    await coordinator.heartbeat('g', b.memberId);
    clock.advance(1001); // a's last sign of life is now 3001 ms old, b's 1001 ms.
    const bView = await coordinator.heartbeat('g', b.memberId);
    expect(partitionsOf(bView.assignment)).toHaveLength(4);
    expect(bView.generation).toBe(3);
    await expect(coordinator.heartbeat('g', a.memberId)).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER' });
  });

  it('keeps a member whose session has not quite run out', async () => {
    const { coordinator, clock } = await setup({ t: 1 });
    const a = await coordinator.join({ group: 'g', topics: ['t'], sessionTimeoutMs: 3000 });
    clock.advance(3000);
    const view = await coordinator.heartbeat('g', a.memberId);
    expect(view.assignment).toHaveLength(1);
  });

  it('hands partitions over at once when a member leaves', async () => {
    const { coordinator } = await setup({ orders: 4 });
    const a = await coordinator.join({ group: 'g', topics: ['orders'] });
    const b = await coordinator.join({ group: 'g', topics: ['orders'] });
    await coordinator.heartbeat('g', a.memberId);
    await coordinator.leave('g', b.memberId);
    const aView = await coordinator.heartbeat('g', a.memberId);
    expect(aView.assignment).toHaveLength(4);
    const description = await coordinator.describe('g');
    expect(description.members.map((m) => m.memberId)).toEqual([a.memberId]);
    await expect(coordinator.leave('g', b.memberId)).resolves.toBeUndefined();
    await expect(coordinator.heartbeat('g', b.memberId)).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER' });
  });

  it('lets a member leave while its revocation is pending, handing its partitions straight on', async () => {
    const { coordinator } = await setup({ t: 2 });
    const a = await coordinator.join({ group: 'g', topics: ['t'] });
    const b = await coordinator.join({ group: 'g', topics: ['t'] });
    await coordinator.leave('g', a.memberId);
    const bView = await coordinator.heartbeat('g', b.memberId);
    expect(partitionsOf(bView.assignment)).toEqual(['t/0', 't/1']);
  });

  it('keeps partitions of a member rejoining with its id and gives unknown ids a fresh one', async () => {
    const { coordinator } = await setup({ t: 4 });
    const a = await coordinator.join({ group: 'g', topics: ['t'] });
    const b = await coordinator.join({ group: 'g', topics: ['t'] });
    await coordinator.heartbeat('g', a.memberId);
    const before = partitionsOf((await coordinator.heartbeat('g', b.memberId)).assignment);
    const again = await coordinator.join({ group: 'g', memberId: b.memberId, topics: ['t'] });
    expect(again.memberId).toBe(b.memberId);
    expect(again.generation).toBe(2);
    expect(partitionsOf(again.assignment)).toEqual(before);
    const stranger = await coordinator.join({ group: 'g', memberId: 'not-a-member', topics: ['t'] });
    expect(stranger.memberId).not.toBe('not-a-member');
    expect((await coordinator.describe('g')).members).toHaveLength(3);
  });

  it('rebalances when a member changes its subscription by rejoining', async () => {
    const { coordinator } = await setup({ t: 2, u: 2 });
    const a = await coordinator.join({ group: 'g', topics: ['t'] });
    const again = await coordinator.join({ group: 'g', memberId: a.memberId, topics: ['u'] });
    expect(again.generation).toBe(2);
    expect(partitionsOf(again.assignment)).toEqual(['u/0', 'u/1']);
  });

  it('lets the first member choose the strategy and refuses a different one later', async () => {
    const { coordinator } = await setup({ t: 4 });
    await coordinator.join({ group: 'g', topics: ['t'], strategy: 'range' });
    await expect(coordinator.join({ group: 'g', topics: ['t'], strategy: 'sticky' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await coordinator.join({ group: 'g', topics: ['t'] });
    expect((await coordinator.describe('g')).strategy).toBe('range');
  });

  it('assigns a topic created after members subscribed to it', async () => {
    const { coordinator, topics } = await setup({});
    const a = await coordinator.join({ group: 'g', topics: ['later'] });
    expect(a.assignment).toEqual([]);
    topics.counts.set('later', 3);
    await coordinator.topicsChanged();
    const view = await coordinator.heartbeat('g', a.memberId);
    expect(partitionsOf(view.assignment)).toEqual(['later/0', 'later/1', 'later/2']);
    expect(view.generation).toBe(2);
  });

  it('drops a deleted topic from assignments and offsets', async () => {
    const { coordinator, topics, store } = await setup({ t: 2, u: 1 });
    const a = await coordinator.join({ group: 'g', topics: ['t', 'u'] });
    await coordinator.commit('g', [
      { topic: 't', partition: 0, offset: 3 },
      { topic: 'u', partition: 0, offset: 4 },
    ]);
    topics.counts.delete('t');
    await coordinator.topicDeleted('t');
    const view = await coordinator.heartbeat('g', a.memberId);
    expect(partitionsOf(view.assignment)).toEqual(['u/0']);
    expect((await coordinator.fetch('g')).map((o) => o.topic)).toEqual(['u']);
    expect(store.records.size).toBe(2); // The store is the engine's to filter; see OffsetStore.load.
  });
});

describe('GroupCoordinator offsets', () => {
  it('fences commits to partitions the member owns, including ones being revoked', async () => {
    const { coordinator } = await setup({ t: 2 });
    const a = await coordinator.join({ group: 'g', topics: ['t'] });
    const b = await coordinator.join({ group: 'g', topics: ['t'] });
    // One partition is moving to b; a still owns it until it heartbeats.
    const kept = (await coordinator.describe('g')).members.find((m) => m.memberId === a.memberId)?.assignment ?? [];
    expect(kept).toHaveLength(1);
    const moving = kept[0]?.partition === 0 ? 1 : 0;
    const fenceA = { memberId: a.memberId, generation: b.generation };
    const fenceB = { memberId: b.memberId, generation: b.generation };
    await coordinator.commit('g', [{ topic: 't', partition: moving, offset: 10 }], fenceA);
    await expect(coordinator.commit('g', [{ topic: 't', partition: moving, offset: 11 }], fenceB)).rejects.toMatchObject({
      code: 'NOT_PARTITION_OWNER',
    });
    await coordinator.heartbeat('g', a.memberId);
    await expect(coordinator.commit('g', [{ topic: 't', partition: moving, offset: 12 }], fenceA)).rejects.toMatchObject({
      code: 'NOT_PARTITION_OWNER',
    });
    await coordinator.commit('g', [{ topic: 't', partition: moving, offset: 13 }], fenceB);
    expect((await coordinator.fetch('g', 't')).map((o) => [o.partition, o.offset])).toEqual([[moving, 13]]);
  });

  it('refuses a fenced commit from an unknown member and accepts unfenced ones', async () => {
    const { coordinator } = await setup({ t: 1 });
    await coordinator.join({ group: 'g', topics: ['t'] });
    await expect(
      coordinator.commit('g', [{ topic: 't', partition: 0, offset: 1 }], { memberId: 'ghost', generation: 1 }),
    ).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER' });
    await coordinator.commit('g', [{ topic: 't', partition: 0, offset: 2 }]);
    expect((await coordinator.fetch('g')).map((o) => o.offset)).toEqual([2]);
  });

  it('keeps offsets in a new coordinator that loads the same store', async () => {
    const { coordinator, clock, reopen } = await setup({ t: 2, u: 1 });
    await coordinator.commit('billing', [
      { topic: 't', partition: 1, offset: 7, metadata: 'm' },
      { topic: 't', partition: 0, offset: 5 },
    ]);
    clock.advance(10);
    await coordinator.commit('billing', [{ topic: 'u', partition: 0, offset: 1 }]);
    await coordinator.close();
    const restarted = await reopen();
    open.push(restarted);
    const offsets = await restarted.fetch('billing');
    expect(offsets).toEqual([
      { topic: 't', partition: 0, offset: 5, metadata: '', committedAt: clock.time - 10 },
      { topic: 't', partition: 1, offset: 7, metadata: 'm', committedAt: clock.time - 10 },
      { topic: 'u', partition: 0, offset: 1, metadata: '', committedAt: clock.time },
    ]);
    expect(await restarted.list()).toEqual(['billing']);
    expect((await restarted.describe('billing')).offsets).toEqual(offsets);
  });

  it('does not change offsets when the store fails', async () => {
    const { coordinator, store } = await setup({ t: 1 });
    await coordinator.commit('g', [{ topic: 't', partition: 0, offset: 1 }]);
    store.failNext = new Error('disk full');
    await expect(coordinator.commit('g', [{ topic: 't', partition: 0, offset: 2 }])).rejects.toThrow('disk full');
    expect((await coordinator.fetch('g')).map((o) => o.offset)).toEqual([1]);
  });

  it('refuses bad offsets, unknown topics and partitions before writing anything', async () => {
    const { coordinator, store } = await setup({ t: 2 });
    await expect(coordinator.commit('g', [{ topic: 't', partition: 0, offset: -1 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(coordinator.commit('g', [{ topic: 't', partition: 0, offset: 1.5 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(coordinator.commit('g', [{ topic: 't', partition: 2, offset: 1 }])).rejects.toMatchObject({ code: 'PARTITION_NOT_FOUND' });
    await expect(coordinator.commit('g', [{ topic: 'nope', partition: 0, offset: 1 }])).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await expect(coordinator.commit('', [{ topic: 't', partition: 0, offset: 1 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(store.persistCalls).toBe(0);
    expect(await coordinator.list()).toEqual([]);
  });

  it('applies concurrent commits to one partition in call order', async () => {
    const { coordinator } = await setup({ t: 1 });
    await Promise.all([5, 6, 7].map((offset) => coordinator.commit('g', [{ topic: 't', partition: 0, offset }])));
    expect((await coordinator.fetch('g')).map((o) => o.offset)).toEqual([7]);
  });
});

describe('GroupCoordinator groups and limits', () => {
  it('describes an unknown group as empty at generation 0', async () => {
    const { coordinator } = await setup({});
    expect(await coordinator.describe('nobody')).toEqual({
      group: 'nobody',
      generation: 0,
      strategy: 'sticky',
      members: [],
      offsets: [],
    });
  });

  it('lists groups with members or offsets and forgets empty ones', async () => {
    const { coordinator } = await setup({ t: 1 });
    const a = await coordinator.join({ group: 'members-only', topics: ['t'] });
    await coordinator.commit('offsets-only', [{ topic: 't', partition: 0, offset: 1 }]);
    expect(await coordinator.list()).toEqual(['members-only', 'offsets-only']);
    await coordinator.leave('members-only', a.memberId);
    expect(await coordinator.list()).toEqual(['offsets-only']);
  });

  it('bounds the number of groups and of members per group', async () => {
    const { coordinator } = await setup({ t: 1 }, { maxGroups: 2, maxMembersPerGroup: 2 });
    await coordinator.join({ group: 'a', topics: ['t'] });
    await coordinator.commit('b', [{ topic: 't', partition: 0, offset: 1 }]);
    await expect(coordinator.join({ group: 'c', topics: ['t'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(coordinator.commit('c', [{ topic: 't', partition: 0, offset: 1 }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await coordinator.join({ group: 'a', topics: ['t'] });
    await expect(coordinator.join({ group: 'a', topics: ['t'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await coordinator.list()).toEqual(['a', 'b']);
  });

  it('refuses bad join requests and heartbeats from unknown members', async () => {
    const { coordinator } = await setup({ t: 1 });
    await expect(coordinator.join({ group: 'g', topics: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(coordinator.join({ group: 'g', topics: ['bad/name'] })).rejects.toMatchObject({ code: 'INVALID_TOPIC_NAME' });
    await expect(coordinator.join({ group: '', topics: ['t'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(coordinator.join({ group: 'g', topics: ['t'], sessionTimeoutMs: Number.NaN })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(coordinator.heartbeat('g', 'who')).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER' });
    expect(await coordinator.list()).toEqual([]);
  });

  it('refuses every call after close', async () => {
    const { coordinator } = await setup({ t: 1 });
    const a = await coordinator.join({ group: 'g', topics: ['t'] });
    await coordinator.close();
    await coordinator.close();
    const closed = { code: 'ENGINE_CLOSED' };
    await expect(coordinator.heartbeat('g', a.memberId)).rejects.toMatchObject(closed);
    await expect(coordinator.join({ group: 'g', topics: ['t'] })).rejects.toMatchObject(closed);
    await expect(coordinator.commit('g', [{ topic: 't', partition: 0, offset: 1 }])).rejects.toMatchObject(closed);
    await expect(coordinator.fetch('g')).rejects.toMatchObject(closed);
    await expect(coordinator.list()).rejects.toMatchObject(closed);
    await expect(coordinator.topicsChanged()).rejects.toMatchObject(closed);
  });

  it('runs its expiry sweep on a timer that close stops', async () => {
    vi.useFakeTimers();
    const { coordinator } = await setup({});
    expect(vi.getTimerCount()).toBe(1);
    await coordinator.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
