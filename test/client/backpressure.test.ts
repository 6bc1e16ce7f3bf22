/**
 * Backpressure is asserted through promise states: the engine's appends are held by a gate, so
 * acknowledgements come only when the test releases them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppendGate, readAll, setup, settle, track, type ClientTestServer } from './setup.js';

let t: ClientTestServer;
let gate: AppendGate;
beforeEach(async () => {
  gate = new AppendGate();
  t = await setup({ wrap: (engine) => gate.wrap(engine) });
});
afterEach(async () => {
  gate.open();
  await t.cleanup();
});

describe('producer backpressure', () => {
  it('holds send() while the in-flight window is full and sends the next batch only when an ack frees a slot', async () => {
    await t.engine.createTopic('bp'); // auto-creation would retry the append through the gate
    const client = t.client();
    await client.connect();
    const producer = client.producer<number>({ topic: 'bp', partition: 0, maxInflight: 2, batchSize: 1, lingerMs: 0 });
    const sends = Array.from({ length: 5 }, (_, n) => track(producer.send({ value: n })));

    await gate.arrived(2);
    await settle();
    // Two batches in flight (held by the engine), the third full and waiting, the rest queued.
    expect(gate.calls).toBe(2);
    expect(sends.map((s) => s.state)).toEqual(['pending', 'pending', 'pending', 'pending', 'pending']);

    gate.releaseOne();
    await sends[0]!.promise;
    await gate.arrived(3); // the freed slot went to the next batch, and only to it
    await settle();
    expect(gate.calls).toBe(3);
    expect(sends.map((s) => s.state)).toEqual(['fulfilled', 'pending', 'pending', 'pending', 'pending']);

    gate.releaseOne();
    gate.releaseOne();
    await sends[2]!.promise;
    expect(sends.slice(0, 3).map((s) => s.state)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);

    gate.open();
    const offsets = await Promise.all(sends.map(async (s) => (await s.promise).offset));
    expect(offsets).toEqual([0, 1, 2, 3, 4]);
    expect((await readAll(t.engine, 'bp', 0)).map((r) => r.value)).toEqual([0, 1, 2, 3, 4]);
  });

  it('fills the next batch while the window is full, so a slow server gets bigger batches', async () => {
    await t.engine.createTopic('grow');
    const client = t.client();
    await client.connect();
    const producer = client.producer<number>({ topic: 'grow', partition: 0, maxInflight: 1, batchSize: 100, lingerMs: 0 });
    const first = track(producer.send({ value: 0 }));
    await gate.arrived(1);
    const rest = Array.from({ length: 50 }, (_, n) => track(producer.send({ value: n + 1 })));
    await settle();
    expect(gate.calls).toBe(1);
    gate.open();
    await Promise.all(rest.map((s) => s.promise));
    expect(first.state).toBe('fulfilled');
    // One batch for the first record, one for the 50 that queued behind it.
    expect(gate.calls).toBe(2);
  });

  it('shares the connection-wide produce window (max_inflight_produce) between producers', async () => {
    await t.cleanup();
    gate = new AppendGate();
    t = await setup({ wrap: (engine) => gate.wrap(engine), server: { ws: { maxInflightProduce: 2 } } });
    await t.engine.createTopic('shared-a');
    await t.engine.createTopic('shared-b');
    const client = t.client();
    await client.connect();
    expect(client.limits?.maxInflightProduce).toBe(2);
    const a = client.producer<number>({ topic: 'shared-a', partition: 0, lingerMs: 0, batchSize: 1 });
    const b = client.producer<number>({ topic: 'shared-b', partition: 0, lingerMs: 0, batchSize: 1 });
    const sends = [a.send({ value: 1 }), b.send({ value: 2 }), a.send({ value: 3 }), b.send({ value: 4 })].map(track);
    await gate.arrived(2);
    await settle();
    // A third frame would have been refused with RATE_LIMITED; the client holds it instead.
    expect(gate.calls).toBe(2);
    gate.open();
    await Promise.all(sends.map((s) => s.promise));
    expect(sends.every((s) => s.state === 'fulfilled')).toBe(true);
  });
});
