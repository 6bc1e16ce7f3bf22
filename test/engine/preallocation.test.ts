/**
 * The active segment of an fsync topic is extended ahead of its data (sparse) so durable writes
 * need not commit a new file length each time. The tail must never be seen: not after a crash
 * (recovery cuts it as a torn tail), not after a clean close, not in sealed segments.
 */
import { cp, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The live engine's data-directory lock (a dead process's lock would be taken over; ours is alive). */
const LOCK_FILE = 'LOCK';
const partitionDir = (root: string): string => join(root, 'topics', 't', '0');

async function logFiles(root: string): Promise<string[]> {
  return (await readdir(partitionDir(root))).filter((f) => f.endsWith('.log')).sort().map((f) => join(partitionDir(root), f));
}

async function appendValues(engine: EmbeddedEngine, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 10) {
    const n = Math.min(10, from + count - i);
    await engine.append('t', 0, Array.from({ length: n }, (_, k) => ({ value: Buffer.from(`value-${i + k}`.padEnd(100, '.')) })));
  }
}

async function readValues(engine: EmbeddedEngine): Promise<string[]> {
  const out: string[] = [];
  const { lowWatermark, highWatermark } = await engine.watermarks('t', 0);
  for (let offset = lowWatermark; offset < highWatermark; ) {
    const res = await engine.read('t', 0, offset, { maxRecords: 500 });
    out.push(...res.records.map((r) => Buffer.from(r.value!).toString().replace(/\.+$/, '')));
    offset = res.nextOffset;
  }
  return out;
}

const expected = (count: number): string[] => Array.from({ length: count }, (_, i) => `value-${i}`);

describe('preallocated active segment (durability fsync)', () => {
  it('a crash leaves a sparse tail that recovery cuts; every record is served and appends go on', async () => {
    const live = await tempDir();
    const copy = await tempDir();
    const engine = new EmbeddedEngine({ dataDir: live.path });
    try {
      await engine.open();
      await engine.createTopic('t', { durability: 'fsync' });
      await appendValues(engine, 0, 200);
      const [active] = await logFiles(live.path);
      expect((await stat(active!)).size).toBeGreaterThan(200 * 100); // data plus the preallocated tail

      // What a kill -9 leaves: the files as they are now, no clean-shutdown marker.
      await cp(live.path, copy.path, { recursive: true, filter: (src) => !src.endsWith(LOCK_FILE) });
      const recovered = new EmbeddedEngine({ dataDir: copy.path });
      await recovered.open();
      try {
        expect(await readValues(recovered)).toEqual(expected(200));
        const [copied] = await logFiles(copy.path);
        const bytes = await readFile(copied!);
        expect(bytes.length).toBeLessThan(200 * 200);
        expect(bytes.subarray(-8).some((b) => b !== 0)).toBe(true); // ends with a batch, not zeros
        await appendValues(recovered, 200, 50);
        expect(await readValues(recovered)).toEqual(expected(250));
      } finally {
        await recovered.close();
      }
    } finally {
      await engine.close();
      await Promise.all([live.remove(), copy.remove()]);
    }
  });

  it('a clean close and every sealed segment keep only their data', async () => {
    const dir = await tempDir();
    try {
      const engine = new EmbeddedEngine({ dataDir: dir.path });
      await engine.open();
      await engine.createTopic('t', { durability: 'fsync', segmentBytes: 16 * 1024 });
      await appendValues(engine, 0, 600);
      await engine.close();

      const files = await logFiles(dir.path);
      expect(files.length).toBeGreaterThan(2);
      for (const file of files) {
        const bytes = await readFile(file);
        expect(bytes.length).toBeLessThanOrEqual(16 * 1024 + 2048);
        expect(bytes.subarray(-8).some((b) => b !== 0)).toBe(true);
      }

      const reopened = new EmbeddedEngine({ dataDir: dir.path });
      await reopened.open();
      try {
        expect(await readValues(reopened)).toEqual(expected(600));
      } finally {
        await reopened.close();
      }
    } finally {
      await dir.remove();
    }
  });
});
