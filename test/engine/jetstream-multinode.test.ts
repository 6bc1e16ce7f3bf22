// Several Brook nodes (JetStream engines) on one prefix serve one set of consumer groups: one
// node is elected coordinator and the others forward to it (docs/jetstream-engine.md).
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorNotAvailableError, UnknownMemberError, type MemberAssignment } from '../../src/engine/index.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { requireService, SERVICES } from '../helpers/services.js';

const servers = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');
const LEASE_MS = 600;

/** Polls `fn` until it returns a value other than undefined; fails after `ms`. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const partitionsOf = (a: MemberAssignment): number[] => a.assignment.map((tp) => tp.partition).sort((x, y) => x - y);

describe.runIf(natsUp)('JetStream engine on several nodes', () => {
  const prefix = `BM${randomBytes(5).toString('hex')}`;
  const engines: JetStreamEngine[] = [];
  const node = async (options: { takeoverDelayMs?: number; now?: () => number } = {}): Promise<JetStreamEngine> => {
    const engine = new JetStreamEngine({
      servers,
      prefix,
      coordinatorLeaseMs: LEASE_MS,
      coordinatorTakeoverDelayMs: options.takeoverDelayMs ?? 0,
      ...(options.now === undefined ? {} : { now: options.now }),
    });
    engines.push(engine);
    await engine.open();
    return engine;
  };

  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close().catch(() => undefined);
    const admin = new JetStreamEngine({ servers, prefix });
    await admin.open();
    await admin.destroy();
  });

  it('serves one group from any node: partitions split across members of different nodes, commits seen everywhere', async () => {
    const a = await node();
    const b = await node();
    await a.createTopic('orders', { partitions: 4 });
    const m1 = await a.joinGroup({ group: 'billing', topics: ['orders'], sessionTimeoutMs: 10_000 });
    const m2 = await b.joinGroup({ group: 'billing', topics: ['orders'], sessionTimeoutMs: 10_000 });
    expect(m2.memberId).not.toBe(m1.memberId);
    // Incremental handover: m1 releases partitions by heartbeating, then m2 gets them.
    const settled = await eventually('both members to own two partitions', async () => {
      const h1 = await a.heartbeat('billing', m1.memberId);
      const h2 = await b.heartbeat('billing', m2.memberId);
      return h1.assignment.length === 2 && h2.assignment.length === 2 ? ([h1, h2] as const) : undefined;
    });
    const owned = [...partitionsOf(settled[0]), ...partitionsOf(settled[1])].sort();
    expect(owned).toEqual([0, 1, 2, 3]);

    // One membership, whichever node is asked.
    for (const e of [a, b]) expect((await e.describeGroup('billing')).members.map((m) => m.memberId).sort()).toEqual([m1.memberId, m2.memberId].sort());
    const p = partitionsOf(settled[1])[0]!;
    await b.append('orders', p, [{ value: Buffer.from('x') }, { value: Buffer.from('y') }]);
    await b.commitOffsets('billing', [{ topic: 'orders', partition: p, offset: 2 }], { memberId: m2.memberId, generation: settled[1].generation });
    expect((await a.fetchOffsets('billing', 'orders')).find((o) => o.partition === p)?.offset).toBe(2);
    // The fence holds across nodes: m1 does not own p.
    await expect(
      a.commitOffsets('billing', [{ topic: 'orders', partition: p, offset: 1 }], { memberId: m1.memberId, generation: settled[0].generation }),
    ).rejects.toMatchObject({ code: 'NOT_PARTITION_OWNER' });
    expect(await b.listGroups()).toContain('billing');
  });

  it('replaces a coordinator that died without stepping down: joins wait out the takeover delay, committed offsets survive', async () => {
    // b's clock is the test's: the takeover delay passes when the test says so, not by waiting.
    const TAKEOVER_MS = 60_000;
    let skew = 0;
    const a = await node({ takeoverDelayMs: TAKEOVER_MS }); // first ever: the coordinator, serving at once
    const b = await node({ takeoverDelayMs: TAKEOVER_MS, now: () => Date.now() + skew });
    expect([a.isGroupCoordinator, b.isGroupCoordinator]).toEqual([true, false]);
    await a.createTopic('events', { partitions: 2 });
    const m1 = await a.joinGroup({ group: 'g', topics: ['events'], sessionTimeoutMs: 10_000 });
    const m2 = await b.joinGroup({ group: 'g', topics: ['events'], sessionTimeoutMs: 10_000 });
    const [h1] = await eventually('an even split', async () => {
      const x = await a.heartbeat('g', m1.memberId);
      const y = await b.heartbeat('g', m2.memberId);
      return x.assignment.length === 1 && y.assignment.length === 1 ? ([x, y] as const) : undefined;
    });
    const p1 = partitionsOf(h1)[0]!;
    await a.append('events', p1, Array.from({ length: 5 }, (_, i) => ({ value: Buffer.from(String(i)) })));
    await a.commitOffsets('g', [{ topic: 'events', partition: p1, offset: 5 }], { memberId: m1.memberId, generation: h1.generation });
    expect(a.groupCoordinatorTakeovers).toBe(0); // elected first, nobody to take over from

    // Node a dies: its NATS connection drops without releasing the lease.
    await (a as unknown as { conn: { nc: NatsConnection } }).conn.nc.close();
    await eventually('b to win the lease', async () => (b.isGroupCoordinator ? true : undefined));

    // Within the delay: b leads, but joins and heartbeats are refused (retriable), so m1 — which
    // may still be consuming p1 somewhere — cannot see p1 handed to another member yet.
    await expect(b.heartbeat('g', m2.memberId)).rejects.toBeInstanceOf(CoordinatorNotAvailableError);
    await expect(b.joinGroup({ group: 'g', topics: ['events'], sessionTimeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'COORDINATOR_NOT_AVAILABLE',
    });
    // Reads of committed offsets are served meanwhile.
    expect((await b.fetchOffsets('g', 'events')).find((o) => o.partition === p1)?.offset).toBe(5);
    expect(b.groupCoordinatorTakeovers).toBe(0);

    // The delay passes: the old membership is unknown, a rejoin gets everything.
    skew = TAKEOVER_MS;
    await expect(b.heartbeat('g', m2.memberId)).rejects.toBeInstanceOf(UnknownMemberError);
    expect(b.groupCoordinatorTakeovers).toBe(1);
    const again = await b.joinGroup({ group: 'g', topics: ['events'], memberId: m2.memberId, sessionTimeoutMs: 10_000 });
    expect(partitionsOf(again)).toEqual([0, 1]); // m1 died with its coordinator: m2 takes everything
    expect((await b.fetchOffsets('g', 'events')).find((o) => o.partition === p1)?.offset).toBe(5);
    expect(b.groupCoordinatorTakeovers).toBe(1);
  });

  it('with no takeover delay, the successor serves joins as soon as it wins', async () => {
    const a = await node();
    const b = await node();
    await a.createTopic('events', { partitions: 1 });
    const m = await b.joinGroup({ group: 'g', topics: ['events'] });
    await (a as unknown as { conn: { nc: NatsConnection } }).conn.nc.close();
    // b's member hears, in order: nothing unusual or "no coordinator", then "unknown member"
    // from the new coordinator (b itself), never any other error.
    const seen = new Set<string>();
    await eventually('the new coordinator to forget the old membership', async () => {
      try {
        await b.heartbeat('g', m.memberId);
        return undefined;
      } catch (err) {
        if (err instanceof CoordinatorNotAvailableError) {
          seen.add(err.code);
          return undefined;
        }
        if (err instanceof UnknownMemberError) return true;
        throw err;
      }
    });
    expect(b.isGroupCoordinator).toBe(true);
    expect(b.groupCoordinatorTakeovers).toBe(1);
    expect([...seen].every((c) => c === 'COORDINATOR_NOT_AVAILABLE')).toBe(true);
  });

  it('refuses a negative takeover delay', () => {
    expect(() => new JetStreamEngine({ servers, prefix, coordinatorTakeoverDelayMs: -1 })).toThrow(/coordinatorTakeoverDelayMs/);
  });

  it('hands the coordinator over at once when it closes cleanly', async () => {
    const a = await node();
    const b = await node();
    await a.createTopic('t', { partitions: 1 });
    await a.commitOffsets('g', [{ topic: 't', partition: 0, offset: 0 }]);
    await a.close();
    // b wins on its next lease tick (a third of the lease), not after the lease expires.
    const m = await eventually('b to serve', async () => {
      try {
        return await b.joinGroup({ group: 'g', topics: ['t'] });
      } catch (err) {
        if (err instanceof CoordinatorNotAvailableError) return undefined;
        throw err;
      }
    });
    expect(partitionsOf(m)).toEqual([0]);
  });
});
