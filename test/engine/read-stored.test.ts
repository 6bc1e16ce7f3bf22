// readStored: whole stored batches from any offset, from the tail cache and from segment files,
// within hard limits. Decoding what it returns must give exactly what read() gives from the
// same offset, and its counts must match the records it delivers.
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBatch, decodeRecords } from '../../src/engine/embedded/batch-codec.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { StoredBatchRead, StoredRecord } from '../../src/engine/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const BATCHES = 40;

/** Decodes the records a readStored result delivers: those at or after `from`. */
function decode(result: StoredBatchRead, from: number): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (const batch of result.batches) {
    const buf = Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength);
    const check = checkBatch(buf, 0, true);
    if (!check.ok) throw new Error(`returned batch is invalid: ${check.detail}`);
    expect(check.header.length).toBe(batch.byteLength); // whole batches, nothing else
    decodeRecords(buf, 0, check.header, from, out, Number.MAX_SAFE_INTEGER);
  }
  return out;
}

const plain = (r: StoredRecord): unknown => ({
  offset: r.offset,
  timestamp: r.timestamp,
  key: r.key === null ? null : Buffer.from(r.key).toString('hex'),
  value: r.value === null ? null : Buffer.from(r.value).toString('hex'),
  headers: r.headers,
});

describe.each([
  ['segment files', 0],
  ['the tail cache', 64 * 1024 * 1024],
])('readStored from %s', (_where, tailCacheBytes) => {
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  let end = 0;

  beforeAll(async () => {
    dir = await tempDir('brook-read-stored-');
    engine = new EmbeddedEngine({
      dataDir: dir.path,
      logger: pino({ level: 'silent' }),
      tailCacheBytes,
      tailCachePerPartitionBytes: tailCacheBytes,
    });
    await engine.open();
    // Small segments, so reads cross segment boundaries too.
    await engine.createTopic('s', { partitions: 1, segmentBytes: 16 * 1024 });
    for (let b = 0; b < BATCHES; b++) {
      const n = 1 + ((b * 7) % 13);
      const result = await engine.append(
        's',
        0,
        Array.from({ length: n }, (_, i) => ({
          key: (b + i) % 3 === 0 ? null : Buffer.from(`k${b}-${i}`),
          value: (b + i) % 5 === 0 ? null : Buffer.alloc(1 + ((b * 31 + i * 17) % 400), b + i),
          ...((b + i) % 4 === 0 ? { headers: { trace: `t${b}`, 'ü': '€' } } : {}),
        })),
      );
      end = result.baseOffset + n;
    }
  });
  afterAll(async () => {
    await engine.close();
    await dir.remove();
  });

  it('delivers exactly what read() does from any offset, in whole batches within the limits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: end }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 40_000 }),
        async (from, maxRecords, maxBytes) => {
          const stored = await engine.readStored!('s', 0, from, { maxRecords, maxBytes });
          const delivered = decode(stored, from);
          expect(delivered.length).toBe(stored.records);
          expect(stored.records).toBeLessThanOrEqual(maxRecords);
          expect(stored.bytes).toBe(stored.batches.reduce((n, b) => n + b.byteLength, 0));
          expect(stored.bytes).toBeLessThanOrEqual(maxBytes);
          let recordBytes = 0;
          for (const r of delivered) {
            recordBytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
            for (const [name, value] of Object.entries(r.headers)) recordBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
          }
          expect(stored.recordBytes).toBe(recordBytes);
          expect(stored.highWatermark).toBe(end);
          if (from === end) {
            expect(stored.batches).toEqual([]);
            expect(stored.nextOffset).toBe(end);
            return;
          }
          if (stored.blocked !== null) {
            // Nothing fitted: nothing is returned, the position stays, and the need is told.
            expect(stored.batches).toEqual([]);
            expect(stored.nextOffset).toBe(from);
            expect(stored.blocked.records > maxRecords || stored.blocked.bytes > maxBytes).toBe(true);
            return;
          }
          const expected = (await engine.read('s', 0, from, { maxRecords: delivered.length, maxBytes: 64 * 1024 * 1024 })).records;
          expect(delivered.map(plain)).toEqual(expected.map(plain));
          expect(stored.nextOffset).toBe(delivered.at(-1)!.offset + 1);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('with firstBatchAlways, takes the first batch whatever the limits, then only whole batches within them', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: end - 1 }), fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 8_000 }), async (from, maxRecords, maxBytes) => {
        const stored = await engine.readStored!('s', 0, from, { maxRecords, maxBytes, firstBatchAlways: true });
        expect(stored.blocked).toBeNull();
        const delivered = decode(stored, from);
        expect(delivered[0]!.offset).toBe(from);
        expect(delivered.length).toBe(stored.records);
        const plainRead = await engine.readStored!('s', 0, from, { maxRecords, maxBytes });
        if (plainRead.blocked === null) {
          // The first batch fits: the same read as without the option.
          expect(stored.batches.map((b) => b.byteLength)).toEqual(plainRead.batches.map((b) => b.byteLength));
        } else {
          // It does not: it alone comes back.
          expect(stored.batches).toHaveLength(1);
          expect(stored.records).toBe(plainRead.blocked.records);
        }
        const expected = (await engine.read('s', 0, from, { maxRecords: delivered.length, maxBytes: 64 * 1024 * 1024 })).records;
        expect(delivered.map(plain)).toEqual(expected.map(plain));
        expect(stored.nextOffset).toBe(delivered.at(-1)!.offset + 1);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses an offset outside the log', async () => {
    await expect(engine.readStored!('s', 0, end + 1, { maxRecords: 10, maxBytes: 1024 })).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    await expect(engine.readStored!('s', 0, 0, { maxRecords: 0, maxBytes: 1024 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
