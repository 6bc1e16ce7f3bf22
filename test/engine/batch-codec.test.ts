import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkBatch, decodeRecords, encodeBatch, lastOffsetOf } from '../../src/engine/embedded/batch-codec.js';
import type { StoredRecord } from '../../src/engine/index.js';

const bytes = fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null });
const headers = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 });
const record = fc.record({ key: bytes, value: bytes, headers });
const batch = fc.record({
  baseOffset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 10_000 }),
  timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
  records: fc.array(record, { minLength: 1, maxLength: 20 }),
  producerId: fc.option(fc.string({ minLength: 1, maxLength: 16 }), { nil: null }),
  producerSequence: fc.nat(),
});

const eqBytes = (a: Uint8Array | null, b: Uint8Array | null): boolean =>
  a === null || b === null ? a === b : Buffer.from(a).equals(Buffer.from(b));

describe('batch codec', () => {
  it('round-trips any batch exactly', () => {
    fc.assert(
      fc.property(batch, (input) => {
        const buf = encodeBatch(input);
        const check = checkBatch(buf, 0);
        if (!check.ok) return false;
        const { header } = check;
        expect(header.baseOffset).toBe(input.baseOffset);
        expect(header.count).toBe(input.records.length);
        expect(lastOffsetOf(header)).toBe(input.baseOffset + input.records.length - 1);
        expect(header.producerId).toBe(input.producerId);
        expect(header.firstTimestamp).toBe(input.timestamp);
        const out: StoredRecord[] = [];
        decodeRecords(buf, 0, header, 0, out, Infinity);
        expect(out).toHaveLength(input.records.length);
        out.forEach((r, i) => {
          const src = input.records[i]!;
          expect(r.offset).toBe(input.baseOffset + i);
          expect(r.timestamp).toBe(input.timestamp);
          expect(eqBytes(r.key, src.key)).toBe(true);
          expect(eqBytes(r.value, src.value)).toBe(true);
          expect(r.headers).toEqual(src.headers);
        });
        return true;
      }),
    );
  });

  it('detects every single flipped bit', () => {
    fc.assert(
      fc.property(batch, fc.nat(), fc.integer({ min: 0, max: 7 }), (input, at, bit) => {
        const buf = encodeBatch(input);
        const pos = at % buf.length;
        buf[pos]! ^= 1 << bit;
        expect(checkBatch(buf, 0).ok).toBe(false);
      }),
    );
  });

  it('reports a truncated batch as incomplete, never as valid', () => {
    fc.assert(
      fc.property(batch, fc.nat(), (input, cut) => {
        const buf = encodeBatch(input);
        const check = checkBatch(buf.subarray(0, cut % buf.length), 0);
        expect(check.ok).toBe(false);
        if (!check.ok) expect(check.reason).toBe('incomplete');
      }),
    );
  });

  it('decodes only records at or after the requested offset', () => {
    const buf = encodeBatch({ baseOffset: 100, timestamp: 1, records: [{ value: Buffer.from('a') }, { value: Buffer.from('b') }, { value: Buffer.from('c') }] });
    const check = checkBatch(buf, 0);
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    const out: StoredRecord[] = [];
    decodeRecords(buf, 0, check.header, 101, out, 1);
    expect(out.map((r) => [r.offset, Buffer.from(r.value!).toString()])).toEqual([[101, 'b']]);
  });
});
