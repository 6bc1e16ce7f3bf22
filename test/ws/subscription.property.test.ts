// Random credit, seek and byte-credit sequences against a real embedded engine: whatever the
// read-ahead does, pushes follow the log in order from each position with no gap and no
// duplicate, never exceed the credit granted, and leave no read budget held once closed.
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryRecordFrames, binaryRecordSize, decodeRecordFrame, ReadBudget, Subscription } from '../../src/broker/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const RECORDS = 300;

type Step =
  | { readonly kind: 'credit'; readonly records: number; readonly bytes: number }
  | { readonly kind: 'seek'; readonly offset: number }
  | { readonly kind: 'settle' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('credit' as const), records: fc.integer({ min: 0, max: 120 }), bytes: fc.integer({ min: 0, max: 6000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('seek' as const), offset: fc.integer({ min: 0, max: RECORDS }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
);

/** Lets reads, read-aheads and pushes run (the engine's reads go to the file system). */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('Subscription under random credit and seeks', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  beforeAll(async () => {
    dir = await tempDir('brook-sub-property-');
    // No tail cache: reads (and read-aheads) go to the segment files, so they take real time.
    engine = new EmbeddedEngine({ dataDir: dir.path, logger: pino({ level: 'silent' }), tailCacheBytes: 0 });
    await engine.open();
    await engine.createTopic('p', { partitions: 1 });
    // Batches of varied sizes, values of varied lengths: byte credit cuts them anywhere.
    for (let offset = 0; offset < RECORDS; ) {
      const n = Math.min(1 + (offset % 17), RECORDS - offset);
      await engine.append('p', 0, Array.from({ length: n }, (_, i) => ({ value: Buffer.alloc(10 + ((offset + i) * 37) % 200, offset + i) })));
      offset += n;
    }
  });
  afterAll(async () => {
    await engine.close();
    await dir.remove();
  });

  it('pushes the log in order from each position, within the credit, and frees its read budget', async () => {
    /** Checks that found records read ahead and not yet pushed: the runs reach that path. */
    let heldReadAhead = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: RECORDS }), fc.array(step, { minLength: 1, maxLength: 25 }), async (start, steps) => {
        const budget = new ReadBudget(8 * 1024 * 1024);
        const pushed: { offset: number; size: number }[][] = [];
        const failures: unknown[] = [];
        const sub = new Subscription({
          sub: 's',
          topic: 'p',
          partition: 0,
          offset: start,
          credits: { records: 0, bytes: 0 },
          engine,
          frames: binaryRecordFrames,
          readBudget: budget,
          sink: {
            send: (f) => pushed.push(decodeRecordFrame(f as Uint8Array).records.map((r) => ({ offset: r.offset, size: binaryRecordSize(r) }))),
            writable: true,
            parkUntilWritable: () => undefined,
            subscriptionFailed: (_, err) => failures.push(err),
          },
        });
        sub.start();
        // Expected: from each position, the log's offsets in order; credit counted per position.
        let position = start;
        let records = 0;
        let bytes = 0;
        const check = (): void => {
          if (sub.stats().readAhead > 0) heldReadAhead++;
          const got = pushed.splice(0).flat();
          for (const r of got) {
            expect(r.offset).toBe(position);
            position++;
            records--;
            bytes -= r.size;
          }
          expect(records).toBeGreaterThanOrEqual(0);
          expect(bytes).toBeGreaterThanOrEqual(0);
        };
        for (const s of steps) {
          if (s.kind === 'credit') {
            records += s.records;
            bytes += s.bytes;
            sub.addCredit(s.records, s.bytes);
          } else if (s.kind === 'seek') {
            await settle();
            check();
            sub.seek(s.offset); // nothing from the old position is sent after this
            position = s.offset;
            sub.start();
          } else {
            await settle();
            check();
          }
        }
        await settle();
        check();
        sub.close();
        await settle();
        expect(failures).toEqual([]);
        expect(budget.inUse).toBe(0);
      }),
      { numRuns: 40 },
    );
    expect(heldReadAhead).toBeGreaterThan(0);
  });
});
