// The native backend's receipt codec (docs/queues.md, "Receipts and late acks"): what it signs it
// reads back, and any change to a receipt, or another queue or key, is refused.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReceiptCodec, deadlineOf, type Receipt } from '../../src/queues/jetstream/receipts.js';

const receipt = fc.record({
  streamSeq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  deliveries: fc.integer({ min: 1, max: 1_000_000 }),
  consumerSeq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  deliveredAt: fc.integer({ min: 0, max: 36 ** 9 - 1 }),
  leaseMs: fc.integer({ min: 1, max: 12 * 3_600_000 }),
});
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-.';

describe('ReceiptCodec', () => {
  const codec = new ReceiptCodec(randomBytes(32));

  it('reads back what it signed, within the 64 characters the schemas accept', () => {
    fc.assert(
      fc.property(receipt, (r: Receipt) => {
        const raw = codec.format('q', r);
        expect(raw.length).toBeLessThanOrEqual(64);
        expect(codec.parse('q', raw)).toEqual(r);
        expect(deadlineOf(codec.parse('q', raw)!)).toBe(r.deliveredAt + r.leaseMs);
      }),
    );
  });

  it('refuses a receipt with any one character changed, cut or extended', () => {
    fc.assert(
      fc.property(receipt, fc.nat(), fc.constantFrom(...ALPHABET), (r, at, ch) => {
        const raw = codec.format('q', r);
        const i = at % raw.length;
        const changed = raw.slice(0, i) + ch + raw.slice(i + 1);
        if (changed !== raw) expect(codec.parse('q', changed)).toBeNull();
        expect(codec.parse('q', raw.slice(0, i))).toBeNull();
        expect(codec.parse('q', raw + ch)).toBeNull();
      }),
    );
  });

  it('refuses a receipt signed for another queue or with another key', () => {
    fc.assert(
      fc.property(receipt, (r) => {
        const raw = codec.format('q', r);
        expect(codec.parse('q2', raw)).toBeNull();
        expect(new ReceiptCodec(randomBytes(32)).parse('q', raw)).toBeNull();
      }),
    );
  });

  it('refuses receipts of the old format and a short key', () => {
    expect(codec.parse('q', '12.1.12.mfz3k2ab')).toBeNull();
    expect(() => new ReceiptCodec(randomBytes(8))).toThrow(/at least 16 bytes/);
  });
});
