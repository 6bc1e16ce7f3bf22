import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Consumer, ConsumedRecord, TopicPartition } from '../../src/client/index.js';
import { setup, type ClientTestServer } from './setup.js';

let t: ClientTestServer;
beforeEach(async () => {
  t = await setup();
  await t.engine.createTopic('work', { partitions: 4 });
});
afterEach(async () => {
  await t.cleanup();
});

/** Reads a consumer in the background, as an application would. */
function drain<T>(consumer: Consumer<T>): { readonly records: ConsumedRecord<T>[]; readonly done: Promise<void> } {
  const records: ConsumedRecord<T>[] = [];
  const done = (async () => {
    for await (const r of consumer) records.push(r);
  })();
  return { records, done };
}

const key = (r: { partition: number; offset: number }): string => `${r.partition}:${r.offset}`;

describe('consumer groups', () => {
  it('two members split 4 partitions; when one closes the other takes them all over', async () => {
    const producerClient = t.client();
    const producers = [0, 1, 2, 3].map((partition) => producerClient.producer<string>({ topic: 'work', partition }));
    const produce = (round: string): Promise<unknown> =>
      Promise.all(producers.flatMap((p, partition) => Array.from({ length: 5 }, (_, n) => p.send({ value: `${round}-${partition}-${n}` }))));
    await produce('a');

    const events: string[] = [];
    const member = (name: string): Consumer<string> =>
      t.client().consumer<string>({
        topic: 'work',
        group: 'workers',
        sessionTimeoutMs: 1500, // heartbeats every 500 ms
        credits: 3,
        onAssigned: (tps: readonly TopicPartition[]) => void events.push(`${name}+${tps.map((tp) => tp.partition).join(',')}`),
        onRevoked: (tps: readonly TopicPartition[]) => void events.push(`${name}-${tps.map((tp) => tp.partition).join(',')}`),
      });
    const one = member('one');
    const readOne = drain(one);
    await one.ready();
    const two = member('two');
    const readTwo = drain(two);

    // The first member's heartbeat hands two partitions over, the second's picks them up.
    await vi.waitFor(
      () => {
        expect(one.assignment).toHaveLength(2);
        expect(two.assignment).toHaveLength(2);
      },
      { timeout: 20_000, interval: 50 },
    );
    const split = [...one.assignment, ...two.assignment].map((tp) => tp.partition).sort();
    expect(split).toEqual([0, 1, 2, 3]);
    await produce('b');
    await vi.waitFor(() => expect(new Set([...readOne.records, ...readTwo.records].map(key)).size).toBe(40), {
      timeout: 20_000,
      interval: 50,
    });
    // After the split each member reads only its own partitions.
    const ownedByTwo = new Set(two.assignment.map((tp) => tp.partition));
    expect(readOne.records.filter((r) => r.value.startsWith('b-')).every((r) => !ownedByTwo.has(r.partition))).toBe(true);
    expect(readTwo.records.every((r) => ownedByTwo.has(r.partition))).toBe(true);

    // The second member leaves: the first takes over everything at its next heartbeat.
    await two.close();
    await readTwo.done;
    await vi.waitFor(() => expect(one.assignment).toHaveLength(4), { timeout: 20_000, interval: 50 });
    await produce('c');
    await vi.waitFor(() => expect(readOne.records.filter((r) => r.value.startsWith('c-'))).toHaveLength(20), {
      timeout: 20_000,
      interval: 50,
    });
    // At-least-once across the handovers: every record was read by somebody.
    expect(new Set([...readOne.records, ...readTwo.records].map(key)).size).toBe(60);
    expect(events[0]).toBe('one+0,1,2,3');
    expect(events).toContain('two-' + [...ownedByTwo].sort().join(','));
    await one.close();
    await readOne.done;
  });

  it('commits a revoked partition before the next heartbeat hands it over (no record read twice)', async () => {
    const producerClient = t.client();
    const producers = [0, 1, 2, 3].map((partition) => producerClient.producer<number>({ topic: 'work', partition }));
    await Promise.all(producers.flatMap((p) => Array.from({ length: 10 }, (_, n) => p.send({ value: n }))));

    const one = t.client().consumer<number>({ topic: 'work', group: 'handover', sessionTimeoutMs: 1500 });
    const readOne = drain(one);
    await vi.waitFor(() => expect(readOne.records).toHaveLength(40), { timeout: 20_000, interval: 20 });
    const two = t.client().consumer<number>({ topic: 'work', group: 'handover', sessionTimeoutMs: 1500 });
    const readTwo = drain(two);
    await vi.waitFor(() => expect(two.assignment).toHaveLength(2), { timeout: 20_000, interval: 50 });
    await Promise.all(producers.flatMap((p) => Array.from({ length: 5 }, (_, n) => p.send({ value: 100 + n }))));
    await vi.waitFor(() => expect(readOne.records.length + readTwo.records.length).toBe(60), { timeout: 20_000, interval: 20 });
    // The second member starts each partition it got where the first one committed: nothing twice.
    const all = [...readOne.records, ...readTwo.records].map(key);
    expect(new Set(all).size).toBe(all.length);
    expect(readTwo.records.every((r) => r.value >= 100)).toBe(true);
  });
});
