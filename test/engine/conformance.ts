/**
 * The Engine conformance suite: written once against the interface, run against every engine.
 * An engine that genuinely lacks a capability skips the affected tests with a stated reason
 * (see EngineCapabilities and docs/engines.md).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Engine, StoredRecord } from '../../src/engine/index.js';

export interface EngineHarness {
  readonly engine: Engine;
  /** Closes the engine and opens a new one on the same storage. */
  reopen(): Promise<Engine>;
  /** Forces retention and compaction to run now. */
  maintenance(engine: Engine): Promise<void>;
  cleanup(): Promise<void>;
}

const text = (s: string): Buffer => Buffer.from(s);
const str = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString());

async function readAll(engine: Engine, topic: string, partition: number, from = 0): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  let offset = from;
  for (;;) {
    const { highWatermark } = await engine.watermarks(topic, partition);
    if (offset >= highWatermark) return out;
    const res = await engine.read(topic, partition, offset, { maxRecords: 1000 });
    out.push(...res.records);
    if (res.nextOffset === offset) throw new Error('read made no progress');
    offset = res.nextOffset;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function engineConformance(name: string, setup: () => Promise<EngineHarness>): void {
  describe(`Engine conformance: ${name}`, () => {
    let h: EngineHarness;
    let engine: Engine;

    beforeEach(async () => {
      h = await setup();
      engine = h.engine;
    });

    afterEach(async () => {
      await h.cleanup();
    });

    describe('topics', () => {
      it('creates, describes, lists and deletes topics', async () => {
        const created = await engine.createTopic('orders', { partitions: 3 });
        expect(created.name).toBe('orders');
        expect(created.partitions.map((p) => [p.partition, p.lowWatermark, p.highWatermark])).toEqual([
          [0, 0, 0],
          [1, 0, 0],
          [2, 0, 0],
        ]);
        expect((await engine.listTopics()).map((t) => t.name)).toContain('orders');
        expect((await engine.describeTopic('orders')).config.partitions).toBe(3);
        await engine.deleteTopic('orders');
        expect((await engine.listTopics()).map((t) => t.name)).not.toContain('orders');
        await expect(engine.describeTopic('orders')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
      });

      it('rejects duplicates, bad names, bad settings and unknown topics with stable codes', async () => {
        await engine.createTopic('t1');
        await expect(engine.createTopic('t1')).rejects.toMatchObject({ code: 'TOPIC_EXISTS' });
        for (const bad of ['', 'a/b', '..', 'x'.repeat(250), 'sp ace', '__internal']) {
          await expect(engine.createTopic(bad)).rejects.toHaveProperty('code');
        }
        await expect(engine.createTopic('t2', { partitions: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(engine.createTopic('t3', { partitions: 1.5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(engine.append('nope', 0, [{ value: text('x') }])).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
        await expect(engine.append('t1', 7, [{ value: text('x') }])).rejects.toMatchObject({ code: 'PARTITION_NOT_FOUND' });
        await expect(engine.read('t1', -1, 0)).rejects.toMatchObject({ code: 'PARTITION_NOT_FOUND' });
      });
    });

    describe('append and read', () => {
      it('assigns contiguous offsets in order and reads them back intact', async () => {
        await engine.createTopic('log', { partitions: 1 });
        const first = await engine.append('log', 0, [{ value: text('a') }, { value: text('b') }]);
        const second = await engine.append('log', 0, [{ key: text('k'), value: text('c'), headers: { h: 'v', 'ü': 'ß' } }]);
        expect([first.baseOffset, first.count, second.baseOffset]).toEqual([0, 2, 2]);
        const { records, nextOffset, highWatermark, lowWatermark } = await engine.read('log', 0, 0);
        expect(records.map((r) => [r.offset, str(r.key), str(r.value)])).toEqual([
          [0, null, 'a'],
          [1, null, 'b'],
          [2, 'k', 'c'],
        ]);
        expect(records[2]!.headers).toEqual({ h: 'v', 'ü': 'ß' });
        expect([nextOffset, highWatermark, lowWatermark]).toEqual([3, 3, 0]);
      });

      it('keeps order under many concurrent appends', async () => {
        await engine.createTopic('conc', { partitions: 1 });
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => engine.append('conc', 0, [{ value: text(`v${i}`) }, { value: text(`w${i}`) }])),
        );
        const bases = results.map((r) => r.baseOffset);
        expect(bases).toEqual(Array.from({ length: 200 }, (_, i) => i * 2));
        const all = await readAll(engine, 'conc', 0);
        expect(all.map((r) => r.offset)).toEqual(Array.from({ length: 400 }, (_, i) => i));
        expect(all.map((r) => str(r.value))).toEqual(Array.from({ length: 200 }, (_, i) => [`v${i}`, `w${i}`]).flat());
      });

      it('round-trips null keys and values, empty and binary bytes', async () => {
        await engine.createTopic('bin');
        const binary = Buffer.from([0, 255, 1, 254, 0x42, 0x52, 0x4f, 0x4b]);
        await engine.append('bin', 0, [{ key: null, value: null }, { key: Buffer.alloc(0), value: Buffer.alloc(0) }, { key: binary, value: binary }]);
        const { records } = await engine.read('bin', 0, 0);
        expect(records[0]!.key).toBeNull();
        expect(records[0]!.value).toBeNull();
        expect(records[1]!.key?.length).toBe(0);
        expect(records[1]!.value?.length).toBe(0);
        expect(Buffer.from(records[2]!.value!).equals(binary)).toBe(true);
      });

      it('honours record and byte limits on reads and continues with nextOffset', async () => {
        await engine.createTopic('lim');
        await engine.append('lim', 0, Array.from({ length: 50 }, (_, i) => ({ value: text(`r${i}`.padEnd(100, '.')) })));
        const few = await engine.read('lim', 0, 10, { maxRecords: 5 });
        expect(few.records.map((r) => r.offset)).toEqual([10, 11, 12, 13, 14]);
        expect(few.nextOffset).toBe(15);
        const small = await engine.read('lim', 0, 0, { maxBytes: 1 });
        expect(small.records.length).toBeGreaterThanOrEqual(1);
        expect(small.records.length).toBeLessThan(50);
        const atEnd = await engine.read('lim', 0, 50);
        expect(atEnd.records).toEqual([]);
        await expect(engine.read('lim', 0, 51)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
        await expect(engine.read('lim', 0, -1)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
      });

      it('rejects empty batches and oversized records', async () => {
        await engine.createTopic('big', { maxRecordBytes: 1000 });
        await expect(engine.append('big', 0, [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(engine.append('big', 0, [{ value: Buffer.alloc(2000) }])).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
        await engine.append('big', 0, [{ value: Buffer.alloc(100) }]);
        expect((await engine.watermarks('big', 0)).highWatermark).toBe(1);
      });

      it('routes by key hash so one key always lands on one partition', async () => {
        await engine.createTopic('keyed', { partitions: 4 });
        const records = Array.from({ length: 40 }, (_, i) => ({ key: text(`user-${i % 5}`), value: text(String(i)) }));
        const positions = await engine.produce('keyed', records);
        const byKey = new Map<string, Set<number>>();
        positions.forEach((p, i) => {
          const k = `user-${i % 5}`;
          byKey.set(k, (byKey.get(k) ?? new Set()).add(p.partition));
        });
        for (const partitions of byKey.values()) expect(partitions.size).toBe(1);
        for (const [i, pos] of positions.entries()) {
          const { records: got } = await engine.read('keyed', pos.partition, pos.offset, { maxRecords: 1 });
          expect(str(got[0]!.value)).toBe(String(i));
        }
      });

      it('survives a close and reopen with every record intact', async () => {
        await engine.createTopic('durable', { partitions: 2 });
        await engine.append('durable', 0, [{ value: text('p0') }]);
        await engine.append('durable', 1, [{ value: text('p1a') }, { value: text('p1b') }]);
        engine = await h.reopen();
        expect((await readAll(engine, 'durable', 1)).map((r) => str(r.value))).toEqual(['p1a', 'p1b']);
        const next = await engine.append('durable', 0, [{ value: text('after') }]);
        expect(next.baseOffset).toBe(1);
      });
    });

    describe('idempotent producers', () => {
      it('does not append a retried batch twice and returns the original offsets', async () => {
        await engine.createTopic('idem');
        const producer = { id: 'p-1', sequence: 0 };
        const a = await engine.append('idem', 0, [{ value: text('x') }, { value: text('y') }], { producer });
        const retry = await engine.append('idem', 0, [{ value: text('x') }, { value: text('y') }], { producer });
        expect(retry.baseOffset).toBe(a.baseOffset);
        expect(retry.duplicate).toBe(true);
        const b = await engine.append('idem', 0, [{ value: text('z') }], { producer: { id: 'p-1', sequence: 2 } });
        expect(b.baseOffset).toBe(2);
        await expect(engine.append('idem', 0, [{ value: text('gap') }], { producer: { id: 'p-1', sequence: 9 } })).rejects.toMatchObject({
          code: 'OUT_OF_ORDER_SEQUENCE',
        });
        expect((await engine.watermarks('idem', 0)).highWatermark).toBe(3);
      });

      it('deduplicates concurrent retries of an in-flight batch', async () => {
        await engine.createTopic('idem2');
        const producer = { id: 'p-2', sequence: 0 };
        const [one, two] = await Promise.all([
          engine.append('idem2', 0, [{ value: text('once') }], { producer }),
          engine.append('idem2', 0, [{ value: text('once') }], { producer }),
        ]);
        expect(one.baseOffset).toBe(two.baseOffset);
        expect((await engine.watermarks('idem2', 0)).highWatermark).toBe(1);
      });

      it('remembers producer sequences across a restart', async () => {
        await engine.createTopic('idem3');
        await engine.append('idem3', 0, [{ value: text('a') }], { producer: { id: 'p-3', sequence: 0 } });
        engine = await h.reopen();
        const retry = await engine.append('idem3', 0, [{ value: text('a') }], { producer: { id: 'p-3', sequence: 0 } });
        expect(retry.duplicate).toBe(true);
        expect((await engine.watermarks('idem3', 0)).highWatermark).toBe(1);
      });
    });

    describe('time', () => {
      it('gives non-decreasing timestamps and finds the first offset at or after a time', async () => {
        await engine.createTopic('time');
        const before = Date.now();
        await engine.append('time', 0, [{ value: text('a') }]);
        await sleep(20);
        const middle = Date.now();
        await sleep(5);
        await engine.append('time', 0, [{ value: text('b') }, { value: text('c') }]);
        const all = await readAll(engine, 'time', 0);
        for (let i = 1; i < all.length; i++) expect(all[i]!.timestamp).toBeGreaterThanOrEqual(all[i - 1]!.timestamp);
        expect(all[0]!.timestamp).toBeGreaterThanOrEqual(before);
        expect(await engine.offsetForTimestamp('time', 0, 0)).toBe(0);
        expect(await engine.offsetForTimestamp('time', 0, middle)).toBe(1);
        expect(await engine.offsetForTimestamp('time', 0, Date.now() + 60_000)).toBe(3);
      });
    });

    describe('waiting for data', () => {
      it('wakes a waiting reader when a record arrives, without polling', async () => {
        await engine.createTopic('wait');
        const waiting = engine.waitForData('wait', 0, 0, { timeoutMs: 10_000 });
        await sleep(10);
        await engine.append('wait', 0, [{ value: text('hello') }]);
        expect(await waiting).toBe(true);
        expect(await engine.waitForData('wait', 0, 0, { timeoutMs: 10 })).toBe(true);
      });

      it('returns false on timeout and on abort', async () => {
        await engine.createTopic('wait2');
        expect(await engine.waitForData('wait2', 0, 0, { timeoutMs: 20 })).toBe(false);
        const controller = new AbortController();
        const waiting = engine.waitForData('wait2', 0, 0, { timeoutMs: 10_000, signal: controller.signal });
        controller.abort();
        expect(await waiting).toBe(false);
      });
    });

    describe('consumer groups', () => {
      it('forgets the committed offsets of a deleted topic, also for a new topic of the same name after a restart', async () => {
        await engine.createTopic('reborn', { partitions: 1 });
        await engine.commitOffsets('readers', [{ topic: 'reborn', partition: 0, offset: 4 }]);
        await engine.deleteTopic('reborn');
        await engine.createTopic('reborn', { partitions: 1 });
        expect(await engine.fetchOffsets('readers', 'reborn')).toEqual([]);
        engine = await h.reopen();
        expect(await engine.fetchOffsets('readers', 'reborn')).toEqual([]);
      });

      it('commits and fetches offsets, and keeps them across a restart', async () => {
        await engine.createTopic('g', { partitions: 2 });
        await engine.commitOffsets('billing', [
          { topic: 'g', partition: 0, offset: 5, metadata: 'm' },
          { topic: 'g', partition: 1, offset: 7 },
        ]);
        const fetched = await engine.fetchOffsets('billing', 'g');
        expect(fetched.map((o) => [o.partition, o.offset]).sort()).toEqual([
          [0, 5],
          [1, 7],
        ]);
        engine = await h.reopen();
        const again = await engine.fetchOffsets('billing');
        expect(again.find((o) => o.partition === 0)).toMatchObject({ offset: 5, metadata: 'm' });
        await expect(engine.commitOffsets('billing', [{ topic: 'g', partition: 0, offset: -3 }])).rejects.toHaveProperty('code');
        await expect(engine.commitOffsets('billing', [{ topic: 'nope', partition: 0, offset: 1 }])).rejects.toMatchObject({
          code: 'TOPIC_NOT_FOUND',
        });
      });

      it('assigns every partition to exactly one member and rebalances on join and leave', async () => {
        await engine.createTopic('gp', { partitions: 4 });
        const a = await engine.joinGroup({ group: 'workers', topics: ['gp'], sessionTimeoutMs: 5000 });
        expect(a.assignment).toHaveLength(4);
        const b = await engine.joinGroup({ group: 'workers', topics: ['gp'], sessionTimeoutMs: 5000 });
        // b gets partitions only once a has released them (acknowledged by its next heartbeat).
        const aAfter = await engine.heartbeat('workers', a.memberId);
        const bAfter = await engine.heartbeat('workers', b.memberId);
        expect(aAfter.assignment.length + bAfter.assignment.length).toBe(4);
        expect(aAfter.assignment).toHaveLength(2);
        const owned = [...aAfter.assignment, ...bAfter.assignment].map((tp) => tp.partition).sort();
        expect(owned).toEqual([0, 1, 2, 3]);
        await engine.leaveGroup('workers', b.memberId);
        const aLast = await engine.heartbeat('workers', a.memberId);
        expect(aLast.assignment).toHaveLength(4);
        const description = await engine.describeGroup('workers');
        expect(description.members.map((m) => m.memberId)).toEqual([a.memberId]);
      });

      it('takes partitions from a member that stops heartbeating', async () => {
        await engine.createTopic('gx', { partitions: 2 });
        const a = await engine.joinGroup({ group: 'dead', topics: ['gx'], sessionTimeoutMs: 1000 });
        const b = await engine.joinGroup({ group: 'dead', topics: ['gx'], sessionTimeoutMs: 1000 });
        await engine.heartbeat('dead', a.memberId);
        // Only b heartbeats from now on; a's session expires.
        let bView = await engine.heartbeat('dead', b.memberId);
        for (let i = 0; i < 20 && bView.assignment.length < 2; i++) {
          await sleep(150);
          bView = await engine.heartbeat('dead', b.memberId);
        }
        expect(bView.assignment).toHaveLength(2);
        await expect(engine.heartbeat('dead', a.memberId)).rejects.toMatchObject({ code: 'UNKNOWN_MEMBER' });
      });
    });

    describe('retention and compaction', () => {
      it('deletes whole old segments past the size bound and moves the low watermark', async () => {
        await engine.createTopic('ret', { segmentBytes: 4096, retentionBytes: 8192 });
        for (let i = 0; i < 40; i++) await engine.append('ret', 0, [{ value: Buffer.alloc(500, i) }]);
        await h.maintenance(engine);
        const { lowWatermark, highWatermark } = await engine.watermarks('ret', 0);
        expect(highWatermark).toBe(40);
        expect(lowWatermark).toBeGreaterThan(0);
        const rest = await readAll(engine, 'ret', 0, lowWatermark);
        expect(rest.map((r) => r.offset)).toEqual(Array.from({ length: 40 - lowWatermark }, (_, i) => lowWatermark + i));
        await expect(engine.read('ret', 0, 0)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
      });

      it('truncates records below an offset on request and never touches those at or above it', async () => {
        await engine.createTopic('trunc', { segmentBytes: 4096 });
        for (let i = 0; i < 40; i++) await engine.append('trunc', 0, [{ value: Buffer.alloc(500, i) }]);
        const low = await engine.truncateBefore('trunc', 0, 30);
        const w = await engine.watermarks('trunc', 0);
        expect(w.lowWatermark).toBe(low);
        expect(low).toBeGreaterThan(0);
        expect(low).toBeLessThanOrEqual(30);
        expect(w.highWatermark).toBe(40);
        const rest = await readAll(engine, 'trunc', 0, low);
        expect(rest.map((r) => r.offset)).toEqual(Array.from({ length: 40 - low }, (_, i) => low + i));
        expect(rest.at(-1)!.value![0]).toBe(39);
        if (low > 0) await expect(engine.read('trunc', 0, 0)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
        // Truncating below what is already gone changes nothing; past the end is refused.
        expect(await engine.truncateBefore('trunc', 0, 0)).toBe(low);
        await expect(engine.truncateBefore('trunc', 0, 41)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
        // Survives a reopen and appends continue at the same offsets.
        engine = await h.reopen();
        expect((await engine.watermarks('trunc', 0)).lowWatermark).toBe(low);
        const appended = await engine.append('trunc', 0, [{ value: text('after') }]);
        expect(appended.baseOffset).toBe(40);
      });

      it('keeps only the latest value per key on compacted topics and drops old tombstones', async (ctx) => {
        if (!engine.capabilities.compaction) ctx.skip();
        await engine.createTopic('compact', { segmentBytes: 2048, cleanupPolicy: 'compact', deleteRetentionMs: 0 });
        for (let round = 0; round < 10; round++) {
          await engine.append(
            'compact',
            0,
            ['a', 'b', 'c'].map((k) => ({ key: text(k), value: text(`${k}${round}`.padEnd(100, '.')) })),
          );
        }
        await engine.append('compact', 0, [{ key: text('b'), value: null }]);
        for (let i = 0; i < 20; i++) await engine.append('compact', 0, [{ key: text(`filler-${i % 2}`), value: Buffer.alloc(200) }]);
        await h.maintenance(engine);
        const all = await readAll(engine, 'compact', 0, (await engine.watermarks('compact', 0)).lowWatermark);
        const latest = new Map<string, string | null>();
        for (const r of all) latest.set(str(r.key)!, str(r.value));
        expect(latest.get('a')?.startsWith('a9')).toBe(true);
        expect(latest.get('c')?.startsWith('c9')).toBe(true);
        expect(latest.has('b')).toBe(false);
        const aVersions = all.filter((r) => str(r.key) === 'a');
        expect(aVersions).toHaveLength(1);
        for (let i = 1; i < all.length; i++) expect(all[i]!.offset).toBeGreaterThan(all[i - 1]!.offset);
        expect((await engine.watermarks('compact', 0)).highWatermark).toBe(51);
      });
    });
  });
}
