import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import type { Engine } from '../../src/engine/index.js';
import { requireService, SERVICES } from '../helpers/services.js';
import { engineConformance } from './conformance.js';

const servers = `nats://127.0.0.1:${SERVICES.nats}`;
// Skips loudly without NATS (and fails under CI=true) before any test is collected.
const natsUp = await requireService('nats');

describe.runIf(natsUp)('JetStream engine', () => {
  engineConformance('jetstream', async () => {
    // A prefix of its own per test: parallel runs and other users of the server never collide.
    const prefix = `BT${randomBytes(5).toString('hex')}`;
    const make = (): JetStreamEngine => new JetStreamEngine({ servers, prefix });
    let engine = make();
    await engine.open();
    return {
      engine,
      async reopen(): Promise<Engine> {
        await engine.close();
        engine = make();
        await engine.open();
        return engine;
      },
      async maintenance(e: Engine): Promise<void> {
        // JetStream applies max_age / max_bytes / max_msgs_per_subject itself on every write;
        // what Brook adds is tombstone expiry on compacted topics.
        await (e as JetStreamEngine).runMaintenance();
      },
      async cleanup(): Promise<void> {
        await engine.close();
        const admin = make();
        await admin.open();
        await admin.destroy();
      },
    };
  });
});

describe.runIf(natsUp)('JetStream engine specifics', () => {
  const opened: JetStreamEngine[] = [];
  let prefix = '';
  const open = async (options: { serverSyncAlways?: boolean } = {}): Promise<JetStreamEngine> => {
    const engine = new JetStreamEngine({ servers, prefix, ...options });
    await engine.open();
    opened.push(engine);
    return engine;
  };
  const text = (s: string): Buffer => Buffer.from(s);

  beforeEach(() => {
    prefix = `BT${randomBytes(5).toString('hex')}`;
  });

  afterEach(async () => {
    for (const engine of opened.splice(0)) await engine.close();
    const admin = new JetStreamEngine({ servers, prefix });
    await admin.open();
    await admin.destroy();
  });

  it('shares topics, records and wake-ups between two engines on one prefix (two Brook nodes)', async () => {
    const a = await open();
    const b = await open();
    await a.createTopic('shared', { partitions: 2 });
    const appended = await b.append('shared', 1, [{ value: text('from b') }]);
    expect(appended.baseOffset).toBe(0);
    expect((await a.read('shared', 1, 0)).records.map((r) => Buffer.from(r.value!).toString())).toEqual(['from b']);
    const waiting = b.waitForData('shared', 0, 0, { timeoutMs: 10_000 });
    await a.append('shared', 0, [{ value: text('from a') }]);
    expect(await waiting).toBe(true);
    await a.deleteTopic('shared');
    await expect(b.append('shared', 0, [{ value: text('late') }])).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await expect(a.createTopic('shared', { partitions: 1 })).resolves.toMatchObject({ name: 'shared' });
    expect((await b.watermarks('shared', 0)).highWatermark).toBe(0);
  });

  it('offers fsync durability only when the servers are declared to sync on every write', async () => {
    const plain = await open();
    expect(plain.capabilities.durabilityModes).toEqual(['os']);
    expect((await plain.createTopic('os-topic')).config.durability).toBe('os');
    await expect(plain.createTopic('fsync-topic', { durability: 'fsync' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const declared = await open({ serverSyncAlways: true });
    expect(declared.capabilities.durabilityModes).toContain('fsync');
    expect((await declared.createTopic('fsync-topic')).config.durability).toBe('fsync');
  });

  it('keeps compacted tombstones for deleteRetentionMs and refuses records without a key', async () => {
    const engine = await open();
    await engine.createTopic('kv', { cleanupPolicy: 'compact', deleteRetentionMs: 3_600_000 });
    await expect(engine.append('kv', 0, [{ value: text('no key') }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await engine.append('kv', 0, [
      { key: text('a'), value: text('1') },
      { key: text('a'), value: null },
      { key: text('b'), value: text('2') },
    ]);
    await engine.runMaintenance();
    const { lowWatermark } = await engine.watermarks('kv', 0);
    const { records } = await engine.read('kv', 0, lowWatermark);
    const str = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString());
    expect(records.map((r) => [r.offset, str(r.key), str(r.value)])).toEqual([
      [1, 'a', null],
      [2, 'b', '2'],
    ]);
  });

  it('returns exact positions from produce and reads a partition across many batches', async () => {
    const engine = await open();
    await engine.createTopic('many', { partitions: 3 });
    const records = Array.from({ length: 3000 }, (_, i) => ({ key: text(`k${i % 17}`), value: text(String(i)) }));
    const positions = await engine.produce('many', records);
    for (let p = 0; p < 3; p++) {
      const mine = positions.map((pos, i) => ({ ...pos, i })).filter((pos) => pos.partition === p);
      const seen: string[] = [];
      for (let offset = 0; offset < mine.length; ) {
        const batch = await engine.read('many', p, offset, { maxRecords: 100 });
        seen.push(...batch.records.map((r) => Buffer.from(r.value!).toString()));
        offset = batch.nextOffset;
      }
      expect(seen).toEqual(mine.sort((x, y) => x.offset - y.offset).map((pos) => String(pos.i)));
    }
  });
});
