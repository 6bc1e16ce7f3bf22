/** Behaviour specific to the embedded engine: clocks, rolling, file-handle bounds, locking, leftovers. */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine, type EmbeddedEngineOptions } from '../../src/engine/embedded/index.js';
import { tempDir } from '../helpers/temp-dir.js';

async function withEngine(
  options: Partial<EmbeddedEngineOptions>,
  fn: (engine: EmbeddedEngine, dataDir: string) => Promise<void>,
): Promise<void> {
  const dir = await tempDir();
  const engine = new EmbeddedEngine({ dataDir: dir.path, ...options });
  await engine.open();
  try {
    await fn(engine, dir.path);
  } finally {
    await engine.close();
    await dir.remove();
  }
}

const segmentFiles = async (dataDir: string, topic: string): Promise<string[]> =>
  (await readdir(join(dataDir, 'topics', topic, '0'))).filter((f) => f.endsWith('.log')).sort();

describe('embedded engine', () => {
  it('rolls segments by age and deletes them by age', async () => {
    let now = 1_000_000;
    await withEngine({ now: () => now }, async (engine, dataDir) => {
      await engine.createTopic('aged', { segmentMs: 1000, retentionMs: 5000 });
      for (let i = 0; i < 5; i++) {
        await engine.append('aged', 0, [{ value: Buffer.from(`t${i}`) }]);
        now += 1500;
      }
      expect((await segmentFiles(dataDir, 'aged')).length).toBeGreaterThanOrEqual(4);
      now += 3000; // the first records are now older than 5 s
      await engine.runMaintenance();
      const { lowWatermark, highWatermark } = await engine.watermarks('aged', 0);
      expect(highWatermark).toBe(5);
      expect(lowWatermark).toBeGreaterThan(0);
      const { records } = await engine.read('aged', 0, lowWatermark);
      for (const r of records) expect(r.timestamp).toBeGreaterThanOrEqual(now - 5000);
      now += 60_000; // everything expired: even the active segment is rolled and removed
      await engine.runMaintenance();
      const after = await engine.watermarks('aged', 0);
      expect(after.lowWatermark).toBe(5);
      expect(after.highWatermark).toBe(5);
      const next = await engine.append('aged', 0, [{ value: Buffer.from('fresh') }]);
      expect(next.baseOffset).toBe(5);
    });
  });

  it('finds offsets by time across many segments', async () => {
    let now = 5_000_000;
    await withEngine({ now: () => now }, async (engine) => {
      await engine.createTopic('clock', { segmentBytes: 1024 });
      for (let i = 0; i < 100; i++) {
        await engine.append('clock', 0, [{ value: Buffer.alloc(50, i) }]);
        now += 10;
      }
      expect(await engine.offsetForTimestamp('clock', 0, 5_000_000 + 10 * 37)).toBe(37);
      expect(await engine.offsetForTimestamp('clock', 0, 5_000_000 + 10 * 37 - 5)).toBe(37);
      expect(await engine.offsetForTimestamp('clock', 0, 0)).toBe(0);
      expect(await engine.offsetForTimestamp('clock', 0, now + 1)).toBe(100);
    });
  });

  it('keeps open file handles bounded however many segments are read', async () => {
    await withEngine({ maxOpenFiles: 4, tailCachePerPartitionBytes: 1024 }, async (engine, dataDir) => {
      await engine.createTopic('many', { segmentBytes: 1024 });
      for (let i = 0; i < 200; i++) await engine.append('many', 0, [{ value: Buffer.alloc(200, i) }]);
      expect((await segmentFiles(dataDir, 'many')).length).toBeGreaterThan(50);
      const fdsBefore = (await readdir('/proc/self/fd')).length;
      let offset = 0;
      let count = 0;
      while (offset < 200) {
        const res = await engine.read('many', 0, offset, { maxRecords: 3 });
        count += res.records.length;
        offset = res.nextOffset;
      }
      expect(count).toBe(200);
      const fdsAfter = (await readdir('/proc/self/fd')).length;
      expect(fdsAfter - fdsBefore).toBeLessThanOrEqual(4);
    });
  });

  it('reads a batch larger than a read chunk from disk, one record at a time', async () => {
    const dir = await tempDir();
    try {
      let engine = new EmbeddedEngine({ dataDir: dir.path });
      await engine.open();
      await engine.createTopic('wide');
      await engine.append('wide', 0, Array.from({ length: 1000 }, (_, i) => ({ value: Buffer.alloc(300, i % 256) })));
      await engine.close();
      engine = new EmbeddedEngine({ dataDir: dir.path }); // empty tail cache: served from disk
      await engine.open();
      for (const offset of [0, 1, 500, 999]) {
        const { records, nextOffset } = await engine.read('wide', 0, offset, { maxRecords: 1 });
        expect(records.map((r) => r.offset)).toEqual([offset]);
        expect(records[0]!.value![0]).toBe(offset % 256);
        expect(nextOffset).toBe(offset + 1);
      }
      await engine.close();
    } finally {
      await dir.remove();
    }
  });

  it('pushes back producers that outrun the disk instead of queueing without bound', async () => {
    await withEngine({ maxPendingBytesPerPartition: 2000 }, async (engine) => {
      await engine.createTopic('busy');
      // Issued in one tick: nothing is flushed yet, so the queue fills and the rest are refused.
      const attempts = Array.from({ length: 20 }, (_, i) =>
        engine.append('busy', 0, [{ value: Buffer.alloc(500, i) }]).then(
          (r) => ({ ok: true as const, offset: r.baseOffset, i }),
          (err: { code?: string }) => ({ ok: false as const, code: err.code, i }),
        ),
      );
      const results = await Promise.all(attempts);
      const accepted = results.filter((r) => r.ok);
      const refused = results.filter((r) => !r.ok);
      expect(accepted.length).toBeGreaterThan(0);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r.code).toBe('PARTITION_BUSY');
      expect(accepted.map((r) => r.offset)).toEqual(accepted.map((_, k) => k));
      const { records } = await engine.read('busy', 0, 0);
      expect(records.map((r) => r.value![0])).toEqual(accepted.map((r) => r.i));
      // Once the queue drained, appends are accepted again.
      const after = await engine.append('busy', 0, [{ value: Buffer.alloc(500) }]);
      expect(after.baseOffset).toBe(accepted.length);
    });
  });

  it('refuses a second engine on the same data directory', async () => {
    await withEngine({}, async (_engine, dataDir) => {
      const second = new EmbeddedEngine({ dataDir });
      await expect(second.open()).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    });
  });

  it('ignores leftovers of an interrupted compaction and serves the original segment', async () => {
    const dir = await tempDir();
    try {
      let engine = new EmbeddedEngine({ dataDir: dir.path });
      await engine.open();
      await engine.createTopic('left', { segmentBytes: 1024 });
      for (let i = 0; i < 30; i++) await engine.append('left', 0, [{ key: Buffer.from('k'), value: Buffer.alloc(100, i) }]);
      await engine.close();
      const first = (await segmentFiles(dir.path, 'left'))[0]!;
      await writeFile(join(dir.path, 'topics', 'left', '0', `${first}.cleaned`), 'half-written garbage');
      engine = new EmbeddedEngine({ dataDir: dir.path });
      await engine.open();
      const { records } = await engine.read('left', 0, 0, { maxRecords: 100 });
      expect(records.map((r) => r.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect((await readdir(join(dir.path, 'topics', 'left', '0'))).some((f) => f.endsWith('.cleaned'))).toBe(false);
      await engine.close();
    } finally {
      await dir.remove();
    }
  });

  it('refuses operations after close with ENGINE_CLOSED', async () => {
    const dir = await tempDir();
    const engine = new EmbeddedEngine({ dataDir: dir.path });
    await engine.open();
    await engine.createTopic('x');
    await engine.close();
    await expect(engine.append('x', 0, [{ value: null }])).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
    await expect(engine.read('x', 0, 0)).rejects.toMatchObject({ code: 'ENGINE_CLOSED' });
    await dir.remove();
  });
});
