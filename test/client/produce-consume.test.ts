import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { call } from '../server/setup.js';
import { setup, settle, take, track, type ClientTestServer } from './setup.js';

let t: ClientTestServer;
beforeEach(async () => {
  t = await setup();
});
afterEach(async () => {
  await t.cleanup();
});

describe('produce and consume', () => {
  it('round-trips records through one partition', async () => {
    const client = t.client();
    await client.connect();
    expect(client.limits?.maxInflightProduce).toBeGreaterThan(0);
    const producer = client.producer<{ n: number }>({ topic: 'rt', partition: 0 });
    const sent = await Promise.all(
      Array.from({ length: 50 }, (_, n) => producer.send({ key: `k${n % 3}`, value: { n }, headers: { h: String(n) } })),
    );
    expect(sent.map((m) => m.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Set(sent.map((m) => m.partition))).toEqual(new Set([0]));

    const consumer = client.consumer<{ n: number }>({ topic: 'rt', from: 'earliest' });
    const got = await take(consumer, 50);
    expect(got.map((r) => r.value.n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(got[7]).toMatchObject({ topic: 'rt', partition: 0, offset: 7, key: 'k1', headers: { h: '7' } });
    await consumer.close();
  });

  it('sendMany queues records in order under one promise, across batches, and queues nothing when one record is invalid', async () => {
    const client = t.client();
    const producer = client.producer<{ n: number } | undefined>({ topic: 'many', partition: 0, batchSize: 40 });
    // 100 records in batches of 40: one promise, every offset in order.
    const sent = await producer.sendMany(Array.from({ length: 100 }, (_, n) => ({ key: `k${n}`, value: { n } })));
    expect(sent.map((m) => m.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(await producer.sendMany([])).toEqual([]);
    // An invalid record refuses the whole call before anything is queued.
    await expect(producer.sendMany([{ value: { n: 100 } }, { value: undefined }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const after = await producer.send({ value: { n: 101 } });
    expect(after.offset).toBe(100);
    const consumer = client.consumer<{ n: number }>({ topic: 'many', from: 'earliest' });
    const got = await take(consumer, 101);
    expect(got.map((r) => r.value.n)).toEqual([...Array.from({ length: 100 }, (_, i) => i), 101]);
    await consumer.close();
  });

  it('nextBatch hands out many records at once, each partition in order, and counts the previous batch as processed', async () => {
    expect((await call(t.url, 'POST', '/v1/topics', { name: 'batched', partitions: 2 })).status).toBe(201);
    const client = t.client();
    const producers = [0, 1].map((partition) => client.producer<number>({ topic: 'batched', partition }));
    await Promise.all(producers.map((p, partition) => p.sendMany(Array.from({ length: 50 }, (_, n) => ({ value: partition * 1000 + n })))));
    const consumer = client.consumer<number>({ topic: 'batched', group: 'batches', autoCommit: false });
    await expect(consumer.nextBatch(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const got: number[] = [];
    while (got.length < 60) {
      const batch = await consumer.nextBatch(25);
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length).toBeLessThanOrEqual(25);
      got.push(...batch.map((r) => r.value));
    }
    // Every partition's records in order, none twice.
    for (const partition of [0, 1]) {
      const mine = got.filter((v) => Math.floor(v / 1000) === partition);
      expect(mine).toEqual(Array.from({ length: mine.length }, (_, n) => partition * 1000 + n));
    }
    // Commit covers what was handed out; a new member of the group resumes right after it.
    await consumer.commit();
    await consumer.close();
    const resumed = client.consumer<number>({ topic: 'batched', group: 'batches' });
    const rest: number[] = [];
    while (rest.length < 100 - got.length) rest.push(...(await resumed.nextBatch(100)).map((r) => r.value));
    expect(new Set([...got, ...rest]).size).toBe(100);
    expect(rest.length).toBe(100 - got.length);
    await resumed.close();
    expect(await resumed.nextBatch()).toEqual([]);
  });

  it('routes records by key when no partition is given, and delivers live records to a consumer started at latest', async () => {
    expect((await call(t.url, 'POST', '/v1/topics', { name: 'keyed', partitions: 3 })).status).toBe(201);
    const client = t.client();
    const consumers = [0, 1, 2].map((partition) => client.consumer<string>({ topic: 'keyed', partition, from: 'latest' }));
    await Promise.all(consumers.map((c) => c.ready()));
    const producer = client.producer<string>({ topic: 'keyed' });
    const sent = await Promise.all(
      Array.from({ length: 30 }, (_, n) => producer.send({ key: `user-${n % 5}`, value: `v${n}` })),
    );
    // One key, one partition.
    const partitionOf = new Map<string, number>();
    sent.forEach((m, n) => {
      const key = `user-${n % 5}`;
      expect(partitionOf.get(key) ?? m.partition).toBe(m.partition);
      partitionOf.set(key, m.partition);
    });
    for (const [partition, consumer] of consumers.entries()) {
      const expected = sent.filter((m) => m.partition === partition).length;
      const got = await take(consumer, expected);
      expect(got.every((r) => r.partition === partition && partitionOf.get(r.key!) === partition)).toBe(true);
      expect(got.map((r) => r.offset)).toEqual(Array.from({ length: expected }, (_, i) => i));
    }
  });

  it('flush() sends a lingering batch at once and settles every queued send', async () => {
    const client = t.client();
    const producer = client.producer({ topic: 'flush', partition: 0, lingerMs: 60_000, batchSize: 1000 });
    const sends = Array.from({ length: 10 }, (_, n) => track(producer.send({ value: n })));
    await settle();
    expect(sends.every((s) => s.state === 'pending')).toBe(true); // lingering for a minute
    await producer.flush();
    expect(sends.map((s) => s.state)).toEqual(Array(10).fill('fulfilled'));
    expect((await sends[9]!.promise).offset).toBe(9);
  });

  it('encodes and decodes values with the hooks', async () => {
    const client = t.client();
    const producer = client.producer<Date>({ topic: 'dates', partition: 0, encode: (d) => d.toISOString() });
    const when = new Date('2024-01-02T03:04:05.000Z');
    await producer.send({ value: when });
    const consumer = client.consumer<Date>({ topic: 'dates', decode: (v) => new Date(v as string) });
    const [r] = await take(consumer, 1);
    expect(r!.value).toBeInstanceOf(Date);
    expect(r!.value.getTime()).toBe(when.getTime());
  });

  it('never buffers more than the granted window, and grants credit as the application consumes', async () => {
    const client = t.client();
    const producer = client.producer({ topic: 'window', partition: 0, batchSize: 100 });
    await Promise.all(Array.from({ length: 200 }, (_, n) => producer.send({ value: n })));
    const consumer = client.consumer<number>({ topic: 'window', credits: 10 });
    const serverCredits = (): number | undefined =>
      t.server.ws
        .sessions()
        .flatMap((s) => s.subscriptions)
        .find((s) => s.topic === 'window')?.recordCredits;

    const first = await take(consumer, 1);
    expect(first[0]!.value).toBe(0);
    // The server pushed the whole window and stopped: the client holds the rest, never more.
    await vi.waitFor(() => expect(consumer.buffered + 1 + (serverCredits() ?? 0)).toBe(10));
    expect(consumer.buffered).toBeLessThanOrEqual(10);

    const seen: number[] = [0];
    for (let i = 0; i < 150; i++) {
      const r = await consumer.next();
      if (r.done === true) throw new Error('ended early');
      seen.push(r.value.value);
      expect(consumer.buffered).toBeLessThanOrEqual(10);
    }
    expect(seen).toEqual(Array.from({ length: 151 }, (_, i) => i));
    await consumer.close();
  });

  it('returns exactly the byte credit records used, even for values stored as non-canonical JSON', async () => {
    await t.engine.createTopic('bytes');
    // Written straight to the engine as another source might: spacing and escapes that a parse
    // and re-stringify would not reproduce.
    const odd = Buffer.from('{ "spaced" :  "caf\\u00e9",  "n" : 1.50 }');
    await t.engine.append('bytes', 0, Array.from({ length: 10 }, () => ({ key: null, value: odd })));
    const client = t.client();
    const producer = client.producer<unknown>({ topic: 'bytes', partition: 0 });
    await Promise.all(Array.from({ length: 20 }, (_, n) => producer.send({ key: `k${n}`, value: { text: 'é🌊'.repeat(n) } })));
    const window = { records: 100, bytes: 50_000 };
    const consumer = client.consumer<unknown>({ topic: 'bytes', credits: window });
    const got = await take(consumer, 30);
    expect(got[0]!.value).toEqual({ spaced: 'café', n: 1.5 });
    const waiting = consumer.next(); // the loop waits with an empty buffer: all credit goes back
    const sub = (): { recordCredits: number; byteCredits: number | null } | undefined =>
      t.server.ws
        .sessions()
        .flatMap((s) => s.subscriptions)
        .find((s) => s.topic === 'bytes');
    await vi.waitFor(() => expect(sub()).toMatchObject({ recordCredits: window.records, byteCredits: window.bytes }));
    await consumer.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it('a record larger than the byte credit the server has left still arrives: idle credit goes back', async () => {
    const client = t.client();
    const producer = client.producer<string>({ topic: 'big-after-small', partition: 0 });
    await producer.send({ value: 's'.repeat(1000) });
    await producer.send({ value: 'b'.repeat(2400) });
    // After the first record the consumer holds back ~1 KB of used credit (less than half the
    // window), which leaves the server too little for the second: only the idle return frees it.
    const consumer = client.consumer<string>({ topic: 'big-after-small', credits: { records: 100, bytes: 3000 } });
    const got = await take(consumer, 2);
    expect(got.map((r) => r.value.length)).toEqual([1000, 2400]);
    await consumer.close();
  });

  it('seek() moves the position and drops what was buffered', async () => {
    const client = t.client();
    const producer = client.producer({ topic: 'seek', partition: 0 });
    await Promise.all(Array.from({ length: 30 }, (_, n) => producer.send({ value: n })));
    const consumer = client.consumer<number>({ topic: 'seek', credits: 5 });
    expect((await take(consumer, 3)).map((r) => r.value)).toEqual([0, 1, 2]);
    await consumer.seek(20);
    expect((await take(consumer, 3)).map((r) => r.value)).toEqual([20, 21, 22]);
    await consumer.seek('earliest');
    expect((await take(consumer, 2)).map((r) => r.value)).toEqual([0, 1]);
  });

  it('a standalone consumer (group + partition) starts at the group offset and commits to it', async () => {
    const client = t.client();
    const producer = client.producer({ topic: 'standalone', partition: 0 });
    await Promise.all(Array.from({ length: 10 }, (_, n) => producer.send({ value: n })));
    const first = client.consumer<number>({ topic: 'standalone', partition: 0, group: 'solo' });
    expect((await take(first, 4)).map((r) => r.value)).toEqual([0, 1, 2, 3]);
    await first.commit(); // includes the record being processed
    await first.close();
    const offsets = await call(t.url, 'GET', '/v1/groups/solo/offsets?topic=standalone');
    expect((offsets.body as { offsets: { offset: number }[] }).offsets[0]?.offset).toBe(4);

    const second = client.consumer<number>({ topic: 'standalone', partition: 0, group: 'solo' });
    expect((await take(second, 2)).map((r) => r.value)).toEqual([4, 5]);
  });

  it('auto-commits what a group member processed when it closes', async () => {
    const client = t.client();
    const producer = client.producer({ topic: 'autocommit', partition: 0 });
    await Promise.all(Array.from({ length: 10 }, (_, n) => producer.send({ value: n })));
    const consumer = client.consumer<number>({ topic: 'autocommit', group: 'ac' });
    let n = 0;
    for await (const r of consumer) {
      expect(r.value).toBe(n);
      if (++n === 6) break; // the 6th record (offset 5) is being processed: not committed
    }
    const offsets = await call(t.url, 'GET', '/v1/groups/ac/offsets?topic=autocommit');
    expect((offsets.body as { offsets: { offset: number }[] }).offsets[0]?.offset).toBe(5);

    const again = t.client().consumer<number>({ topic: 'autocommit', group: 'ac' });
    expect((await take(again, 1))[0]!.value).toBe(5);
  });
});
