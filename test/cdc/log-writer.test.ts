import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { LogWriter, type DurabilityWaiter, type LogWriterOptions } from '../../src/cdc/log-writer.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A writer on `engine` that throws on append failures unless `onError` is given. */
function writerOn(engine: EmbeddedEngine, options: Partial<LogWriterOptions> = {}): LogWriter {
  return new LogWriter({
    engine,
    maxBufferedBytes: 1024 * 1024,
    maxBatchRecords: 500,
    onDurable: () => undefined,
    onError: (err) => {
      throw err;
    },
    onPressure: () => undefined,
    ...options,
  });
}

/** The engine, with every append's topic, partition and record count noted in `appends`. */
function counting(engine: EmbeddedEngine): { engine: EmbeddedEngine; appends: Array<{ topic: string; partition: number; count: number }> } {
  const appends: Array<{ topic: string; partition: number; count: number }> = [];
  const wrapped = Object.create(engine) as EmbeddedEngine;
  wrapped.append = (topic, partition, records, options) => {
    appends.push({ topic, partition, count: records.length });
    return engine.append(topic, partition, records, options);
  };
  return { engine: wrapped, appends };
}

describe('CDC log writer', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  beforeAll(async () => {
    dir = await tempDir('brook-cdc-writer-');
    engine = new EmbeddedEngine({ dataDir: dir.path });
    await engine.open();
    await engine.createTopic('w', { partitions: 2 });
    await engine.createTopic('tx', { partitions: 1 });
  });
  afterAll(async () => {
    await engine.close();
    await dir.remove();
  });

  it('appends in write order per partition, reports durability, and asks for a pause past its bound', async () => {
    const pressure: boolean[] = [];
    let durableCalls = 0;
    const writer = writerOn(engine, {
      maxBufferedBytes: 256 * 1024,
      onDurable: () => durableCalls++,
      onPressure: (paused) => pressure.push(paused),
    });
    const waiters: DurabilityWaiter[] = [];
    const value = Buffer.alloc(1000, 'v');
    for (let i = 0; i < 5000; i++) {
      if (i % 100 === 0) waiters.push({ outstanding: 0 });
      writer.write('w', i % 2, { key: null, value: Buffer.concat([Buffer.from(`${i}:`), value]) }, waiters.at(-1)!);
    }
    // 5 MB written at once against a 256 KiB bound: the writer asked for a pause.
    expect(pressure[0]).toBe(true);
    expect(writer.bufferedBytes).toBeGreaterThan(256 * 1024);
    await writer.idle();
    while (waiters.some((w) => w.outstanding > 0)) await new Promise((r) => setTimeout(r, 5));
    expect(pressure).toEqual([true, false]);
    expect(writer.bufferedBytes).toBe(0);
    expect(durableCalls).toBeGreaterThan(1);
    for (const p of [0, 1]) {
      const r = await engine.read('w', p, 0, { maxRecords: 5000, maxBytes: 64 * 1024 * 1024 });
      const ids = r.records.map((rec) => Number(Buffer.from(rec.value!).toString().split(':')[0]));
      expect(ids).toEqual(Array.from({ length: 2500 }, (_, i) => i * 2 + p));
    }
  });

  it('appends the records written in one turn (a transaction from one chunk) together, one append per partition', async () => {
    const { engine: noted, appends } = counting(engine);
    const writer = writerOn(noted);
    const tx: DurabilityWaiter = { outstanding: 0 };
    for (let i = 0; i < 10; i++) writer.write('w', i % 2, { key: null, value: Buffer.from(`row ${i}`) }, tx);
    await writer.idle();
    expect(tx.outstanding).toBe(0);
    expect(appends.sort((a, b) => a.partition - b.partition)).toEqual([
      { topic: 'w', partition: 0, count: 5 },
      { topic: 'w', partition: 1, count: 5 },
    ]);
  });

  it('batches a linger topic until its timer, or until idle() appends it at once', async () => {
    const { engine: noted, appends } = counting(engine);
    const writer = writerOn(noted, { linger: { topics: new Set(['tx']), ms: 60_000 } });
    const txs: DurabilityWaiter[] = [];
    for (let i = 0; i < 3; i++) {
      const tx: DurabilityWaiter = { outstanding: 0 };
      txs.push(tx);
      writer.write('w', 0, { key: null, value: Buffer.from(`row ${i}`) }, tx);
      writer.write('tx', 0, { key: null, value: Buffer.from(`tx ${i}`) }, tx);
      await new Promise((r) => setImmediate(r)); // a turn: the table topic's append starts
    }
    expect(appends.filter((a) => a.topic === 'tx')).toEqual([]);
    expect(appends.some((a) => a.topic === 'w')).toBe(true);
    await writer.idle();
    expect(appends.filter((a) => a.topic === 'tx')).toEqual([{ topic: 'tx', partition: 0, count: 3 }]);
    expect(txs.map((t) => t.outstanding)).toEqual([0, 0, 0]);
  });

  it('idle() waits for records queued behind the append in flight, not only for that append', async () => {
    const writer = writerOn(engine);
    const first: DurabilityWaiter = { outstanding: 0 };
    writer.write('w', 1, { key: null, value: Buffer.from('first') }, first);
    await new Promise<void>((r) => queueMicrotask(r)); // its append is in flight now
    const second: DurabilityWaiter = { outstanding: 0 };
    writer.write('w', 1, { key: null, value: Buffer.from('second') }, second);
    await writer.idle();
    expect(first.outstanding).toBe(0);
    expect(second.outstanding).toBe(0);
  });

  it('never completes a waiter whose records could not be appended', async () => {
    let failure: unknown = null;
    const writer = writerOn(engine, { maxBatchRecords: 100, onError: (err) => (failure = err) });
    const lost: DurabilityWaiter = { outstanding: 0 };
    writer.write('no-such-topic', 0, { key: null, value: Buffer.from('x') }, lost);
    await writer.idle();
    expect(failure).not.toBeNull();
    const later: DurabilityWaiter = { outstanding: 0 };
    writer.write('w', 0, { key: null, value: Buffer.from('y') }, later);
    await writer.idle();
    expect(lost.outstanding).toBe(1);
    expect(later.outstanding).toBe(1);
  });
});
