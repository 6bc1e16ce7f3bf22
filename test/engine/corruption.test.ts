/**
 * Corruption of the active segment: a torn tail (truncated at any byte), flipped bits inside it,
 * and garbage appended to it. The engine must start, serve every intact acknowledged record, and
 * never serve a corrupt one. Random positions are drawn by fast-check so failures shrink.
 */
import { open, readdir, rm, stat, truncate, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { StoredRecord } from '../../src/engine/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const BATCHES = 30;

interface Written {
  dir: string;
  remove: () => Promise<void>;
  /** Acknowledged batches: base offset, ids, byte range in the active segment. */
  batches: Array<{ base: number; ids: string[] }>;
  segment: string;
}

async function writeLog(segmentBytes = 1024 * 1024): Promise<Written> {
  const dir = await tempDir();
  const engine = new EmbeddedEngine({ dataDir: dir.path });
  await engine.open();
  await engine.createTopic('c', { segmentBytes });
  const batches: Written['batches'] = [];
  for (let b = 0; b < BATCHES; b++) {
    const ids = Array.from({ length: 1 + (b % 5) }, (_, i) => `b${b}-r${i}`);
    const res = await engine.append('c', 0, ids.map((id) => ({ value: Buffer.from(id.padEnd(40, '.')) })));
    batches.push({ base: res.baseOffset, ids });
  }
  await engine.close();
  const partDir = join(dir.path, 'topics', 'c', '0');
  // Simulate a crash: without the clean-shutdown marker the active segment is validated on open.
  await rm(join(partDir, 'clean-shutdown.json'), { force: true });
  const logs = (await readdir(partDir)).filter((f) => f.endsWith('.log')).sort();
  return { dir: dir.path, remove: dir.remove, batches, segment: join(partDir, logs[logs.length - 1]!) };
}

async function readEverything(engine: EmbeddedEngine): Promise<{ records: StoredRecord[]; errors: string[] }> {
  const { lowWatermark, highWatermark } = await engine.watermarks('c', 0);
  const records: StoredRecord[] = [];
  const errors: string[] = [];
  for (let offset = lowWatermark; offset < highWatermark; ) {
    try {
      const res = await engine.read('c', 0, offset, { maxRecords: 7 });
      records.push(...res.records);
      offset = res.nextOffset;
    } catch (err) {
      errors.push((err as { code?: string }).code ?? String(err));
      offset++; // a consumer skips past the reported offset
    }
  }
  return { records, errors };
}

const text = (r: StoredRecord): string => Buffer.from(r.value!).toString().replace(/\.+$/, '');

function expectOnlyIntact(records: StoredRecord[], written: Written): void {
  const byOffset = new Map<number, string>();
  for (const b of written.batches) b.ids.forEach((id, i) => byOffset.set(b.base + i, id));
  for (const r of records) expect(text(r)).toBe(byOffset.get(r.offset));
}

/** XORs `mask` into the byte at `pos` of the file at `path`. */
async function flipBits(path: string, pos: number, mask: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, pos);
    byte[0]! ^= mask;
    await handle.write(byte, 0, 1, pos);
  } finally {
    await handle.close();
  }
}

/** Damages the written log, opens an engine on it (recovery runs), checks, then cleans up. */
async function damageAndRecover(
  w: Written,
  damage: () => Promise<void>,
  check: (engine: EmbeddedEngine) => Promise<void>,
): Promise<void> {
  try {
    await damage();
    const engine = new EmbeddedEngine({ dataDir: w.dir });
    await engine.open();
    try {
      await check(engine);
    } finally {
      await engine.close();
    }
  } finally {
    await w.remove();
  }
}

const totalRecords = (w: Written): number => w.batches.reduce((n, b) => n + b.ids.length, 0);

describe('corrupted active segment', () => {
  it('truncation at any byte: serves every complete batch before the cut, then appends again', async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 0, max: 1, noNaN: true }), async (fraction) => {
        const w = await writeLog();
        await damageAndRecover(
          w,
          async () => truncate(w.segment, Math.floor((await stat(w.segment)).size * fraction)),
          async (engine) => {
            const { records, errors } = await readEverything(engine);
            expect(errors).toEqual([]);
            expectOnlyIntact(records, w);
            expect(records.map((r) => r.offset)).toEqual(records.map((_, i) => i));
            const hw = (await engine.watermarks('c', 0)).highWatermark;
            const next = await engine.append('c', 0, [{ value: Buffer.from('after') }]);
            expect(next.baseOffset).toBe(hw);
          },
        );
      }),
      { numRuns: 15 },
    );
  });

  it('flipped bits: never serves a corrupt record, serves every intact one, reports the rest', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 3 }), async (flips) => {
        const w = await writeLog();
        await damageAndRecover(
          w,
          async () => {
            const size = (await stat(w.segment)).size;
            for (const [fraction, bit] of flips) await flipBits(w.segment, Math.min(size - 1, Math.floor(size * fraction)), 1 << bit);
          },
          async (engine) => {
            const { records, errors } = await readEverything(engine);
            expectOnlyIntact(records, w);
            for (const code of errors) expect(code).toBe('CORRUPT_RECORD');
            // At most the batches holding a flipped bit are lost (or all after it, if a torn tail).
            expect(records.length).toBeGreaterThan(0);
          },
        );
      }),
      { numRuns: 15 },
    );
  });

  it('a flipped bit mid-log keeps every batch after it readable', async () => {
    const w = await writeLog();
    await damageAndRecover(
      w,
      async () => {
        // Corrupt the payload of the 10th batch: find its position by walking lengths.
        const handle = await open(w.segment, 'r');
        let pos = 0;
        try {
          for (let b = 0; b < 10; b++) {
            const len = Buffer.alloc(4);
            await handle.read(len, 0, 4, pos + 4);
            pos += len.readUInt32LE(0);
          }
        } finally {
          await handle.close();
        }
        await flipBits(w.segment, pos + 70, 0x10);
      },
      async (engine) => {
        const corruptBase = w.batches[10]!.base;
        await expect(engine.read('c', 0, corruptBase)).rejects.toMatchObject({ code: 'CORRUPT_RECORD' });
        const { records } = await readEverything(engine);
        expectOnlyIntact(records, w);
        const total = totalRecords(w);
        expect(records).toHaveLength(total - w.batches[10]!.ids.length);
        expect((await engine.watermarks('c', 0)).highWatermark).toBe(total);
      },
    );
  });

  it('garbage appended after the last batch is cut away', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 5000 }), async (garbage) => {
        const w = await writeLog();
        await damageAndRecover(
          w,
          () => appendFile(w.segment, garbage),
          async (engine) => {
            const { records, errors } = await readEverything(engine);
            expect(errors).toEqual([]);
            expectOnlyIntact(records, w);
            expect(records).toHaveLength(totalRecords(w));
            const next = await engine.append('c', 0, [{ value: Buffer.from('after') }]);
            expect(next.baseOffset).toBe(records.length);
          },
        );
      }),
      { numRuns: 15 },
    );
  });

  it('corruption in a sealed segment is reported with the segment and offset', async () => {
    const w = await writeLog(1024);
    const partDir = join(w.dir, 'topics', 'c', '0');
    let logs: string[] = [];
    await damageAndRecover(
      w,
      async () => {
        logs = (await readdir(partDir)).filter((f) => f.endsWith('.log')).sort();
        expect(logs.length).toBeGreaterThan(2);
        await flipBits(join(partDir, logs[1]!), 60, 0xff);
      },
      async (engine) => {
        const base = Number(logs[1]!.slice(0, 20));
        const err = await engine.read('c', 0, base).then(
          () => null,
          (e: unknown) => e as { code: string; message: string },
        );
        expect(err?.code).toBe('CORRUPT_RECORD');
        expect(err?.message).toContain(logs[1]!.slice(0, 20));
        expect(err?.message).toContain(`offset ${base}`);
        const { records } = await readEverything(engine);
        expectOnlyIntact(records, w);
      },
    );
  });
});
