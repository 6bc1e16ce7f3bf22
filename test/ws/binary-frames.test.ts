/** The binary subprotocol's codec (src/broker/binary-frames.ts): round trips, the documented layout, malformed frames. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BinaryFrameError,
  BinaryKind,
  binaryRecordFrames,
  binaryRecordSize,
  decodeProduceFrame,
  decodeProduceRecords,
  decodeRecordFrame,
  encodeProduceFrame,
  encodeRecordFrame,
} from '../../src/broker/index.js';
import { checkProduceHeader, produceHeader } from '../../src/broker/binary-frames.js';
import { checkBatch, checkClientBatch, ClientBatchError, decodeRecords, encodeBatch } from '../../src/engine/embedded/batch-codec.js';
import { recordBytes } from '../../src/engine/index.js';
import type { ProduceRecord, StoredRecord } from '../../src/engine/index.js';

const bytes = fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null });
const headers = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 });
const produceRecord = fc.record({ key: bytes, value: bytes, headers });
const storedRecord = fc.record({
  offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  key: bytes,
  value: bytes,
  headers,
});

/** Records compared as plain arrays, so Buffer slices and Uint8Arrays with equal bytes are equal. */
function plain(r: ProduceRecord | StoredRecord): unknown {
  return {
    ...('offset' in r ? { offset: r.offset, timestamp: r.timestamp } : {}),
    key: r.key == null ? null : [...r.key],
    value: r.value === null ? null : [...r.value],
    headers: { ...(r.headers ?? {}) },
  };
}

function produceFrame(records: readonly ProduceRecord[], header: Record<string, unknown> = { id: 1, topic: 't' }): Buffer {
  return encodeProduceFrame(header as { id: number; topic: string }, records);
}

describe('binary frames', () => {
  it('round-trips produce frames: header, nulls distinct from empty, headers', () => {
    fc.assert(
      fc.property(fc.array(produceRecord, { maxLength: 20 }), fc.integer({ min: 0, max: 1000 }), (records, partition) => {
        const frame = produceFrame(records, { id: 'r-1', topic: 'orders', partition, producer: { id: 'p', sequence: 3 } });
        const decoded = decodeProduceFrame(frame);
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        expect(decoded.header).toEqual({ id: 'r-1', topic: 'orders', partition, producer: { id: 'p', sequence: 3 } });
        expect(decoded.recordCount).toBe(records.length);
        expect(decodeProduceRecords(decoded.body, decoded.recordCount).map(plain)).toEqual(records.map(plain));
      }),
    );
  });

  it('round-trips record pushes, and a record weighs exactly its encoded bytes', () => {
    fc.assert(
      fc.property(fc.array(storedRecord, { maxLength: 20 }), (records) => {
        const size = records.reduce((n, r) => n + binaryRecordSize(r), 0);
        const frame = encodeRecordFrame(BinaryKind.records, { sub: 's', partition: 2, next_offset: 9 }, records, records.length, size);
        const headerLength = Buffer.byteLength(JSON.stringify({ sub: 's', partition: 2, next_offset: 9 }));
        expect(frame.length).toBe(9 + headerLength + size);
        const decoded = decodeRecordFrame(frame);
        expect(decoded.kind).toBe(BinaryKind.records);
        expect(decoded.header).toEqual({ sub: 's', partition: 2, next_offset: 9 });
        expect(decoded.records.map(plain)).toEqual(records.map(plain));
      }),
    );
  });

  it('fits pushes to the byte credit: a prefix, or nothing and the size the first record needs', () => {
    fc.assert(
      fc.property(fc.array(storedRecord, { minLength: 1, maxLength: 10 }), fc.integer({ min: 0, max: 2000 }), (records, credit) => {
        const push = binaryRecordFrames.records('s', 0, records, 99, 1000, true, credit);
        const sizes = records.map(binaryRecordSize);
        let fits = 0;
        let total = 0;
        while (fits < sizes.length && total + sizes[fits]! <= credit) total += sizes[fits++]!;
        expect(push.sent).toBe(fits);
        if (fits === 0) {
          expect(push.frame).toBeNull();
          expect(push.firstSize).toBe(sizes[0]);
          return;
        }
        expect(push.bytes).toBe(total);
        expect(push.nextOffset).toBe(fits === records.length ? 99 : records[fits]!.offset);
        expect(decodeRecordFrame(push.frame as Uint8Array).records).toHaveLength(fits);
      }),
    );
  });

  it('builds the same push from stored batches as from their decoded records, cut at any record by any credit', () => {
    const batchOf = fc.array(produceRecord, { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        fc.array(batchOf, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 1500 }),
        fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: null }),
        (batchRecords, fromIndex, maxRecords, credit, producerId) => {
          // Batches as the engine stores them, back to back in offsets, some with a producer id.
          const batches: Buffer[] = [];
          const stored: StoredRecord[] = [];
          let base = 1_000;
          for (const [i, records] of batchRecords.entries()) {
            const timestamp = 1_700_000_000_000 + i * 7;
            const batch = encodeBatch({ baseOffset: base, timestamp, records, producerId });
            const header = checkBatch(batch, 0);
            if (!header.ok) throw new Error(header.detail);
            decodeRecords(batch, 0, header.header, 0, stored, Number.MAX_SAFE_INTEGER);
            batches.push(batch);
            base += records.length;
          }
          const from = stored[Math.min(fromIndex, stored.length - 1)]!.offset;
          const fromHere = stored.filter((r) => r.offset >= from);
          const expected = binaryRecordFrames.records('s', 3, fromHere, base, maxRecords, true, credit);
          const push = binaryRecordFrames.fromBatches!('s', 3, batches, from, base, maxRecords, true, credit);
          expect({ sent: push.sent, bytes: push.bytes, nextOffset: push.nextOffset }).toEqual({
            sent: expected.sent,
            bytes: expected.bytes,
            nextOffset: expected.nextOffset,
          });
          if (expected.frame === null) {
            expect(push.frame).toBeNull();
            expect(push.firstSize).toBe(expected.firstSize);
            return;
          }
          expect(Buffer.from(push.frame!).equals(Buffer.from(expected.frame as Uint8Array))).toBe(true);
          expect(push.payloadBytes).toBe(recordBytes(fromHere.slice(0, push.sent)));
        },
      ),
    );
  });

  it('refuses to build a push from a stored record whose fields run past it', () => {
    const batch = encodeBatch({ baseOffset: 0, timestamp: 1, records: [{ key: Buffer.from('k'), value: Buffer.from('value') }] });
    // The key length (after the 56-byte header, the record's length and its two deltas) says 200.
    batch.writeInt32LE(200, 56 + 12);
    expect(() => binaryRecordFrames.fromBatches!('s', 0, [batch], 0, 1, 10, false, 0)).toThrow(/key or value/);
  });

  it('lays a produce frame out as docs/protocol.md shows', () => {
    const frame = produceFrame([{ key: Buffer.from('u1'), value: Buffer.from('{"a":1}') }], { id: 1, topic: 'orders', partition: 0 });
    const header = '{"id":1,"topic":"orders","partition":0}';
    const expected = Buffer.concat([
      Buffer.from([0x01, 0, 0, 0, 0x27]),
      Buffer.from(header),
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]),
      Buffer.from('u1'),
      Buffer.from([0, 0, 0, 7]),
      Buffer.from('{"a":1}'),
      Buffer.from([0, 0]),
    ]);
    expect(frame.toString('hex')).toBe(expected.toString('hex'));
    const push = encodeRecordFrame(
      BinaryKind.records,
      { sub: 's1', partition: 0, next_offset: 42 },
      [{ offset: 41, timestamp: 1732400000000, key: Buffer.from('u1'), value: Buffer.from('{"a":1}'), headers: {} }],
      1,
      26 + 2 + 7,
    );
    expect(push.subarray(0, 5).toString('hex')).toBe('020000002b');
    expect(push.subarray(52, 68).toString('hex')).toBe('00000000000000290000019' + '35b162c00');
  });

  it('refuses truncated frames, lengths past the end and trailing bytes, never throwing anything but BinaryFrameError', () => {
    fc.assert(
      fc.property(fc.array(produceRecord, { minLength: 1, maxLength: 5 }), fc.nat(), (records, cut) => {
        const frame = produceFrame(records);
        const decoded = decodeProduceFrame(frame);
        if (!decoded.ok) throw new Error('valid frame refused');
        const body = decoded.body;
        const short = body.subarray(0, cut % body.length);
        expect(() => decodeProduceRecords(short, decoded.recordCount)).toThrow(BinaryFrameError);
        expect(() => decodeProduceRecords(Buffer.concat([body, Buffer.from([0])]), decoded.recordCount)).toThrow(BinaryFrameError);
        expect(() => decodeProduceRecords(body, decoded.recordCount + 1)).toThrow(BinaryFrameError);
      }),
    );
  });

  it('never throws on random bytes: each frame is decoded or described', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (random, asProduce) => {
        const frame = asProduce ? Buffer.concat([produceFrame([]).subarray(0, 5 + Buffer.byteLength('{"id":1,"topic":"t"}')), Buffer.from(random)]) : Buffer.from(random);
        const decoded = decodeProduceFrame(frame);
        if (!decoded.ok) {
          expect(decoded.message.length).toBeGreaterThan(0);
          return;
        }
        try {
          decodeProduceRecords(decoded.body, decoded.recordCount);
        } catch (err) {
          expect(err).toBeInstanceOf(BinaryFrameError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on a stored produce (kind 0x05) with random bytes for its batch: decoded, then checked or refused', () => {
    const envelope = (header: string): Buffer => Buffer.concat([Buffer.from([BinaryKind.storedProduce, 0, 0, 0, header.length]), Buffer.from(header)]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), fc.integer({ min: 1, max: 3 }), (random, withHeader, count) => {
        // Half the time a well-formed batch header (no producer id, `count` records) in front of
        // random record bytes, so the record checks are reached, not only the header's.
        const batch = withHeader ? Buffer.concat([Buffer.alloc(56), Buffer.from(random)]) : Buffer.from(random);
        if (withHeader) {
          batch.writeUInt32LE(0x4b4f5242, 0);
          batch.writeUInt32LE(batch.length, 4);
          batch[12] = 1;
          batch.writeUInt32LE(count, 24);
          batch.writeUInt32LE(count - 1, 28);
        }
        const decoded = decodeProduceFrame(Buffer.concat([envelope('{"id":1,"topic":"t","partition":0}'), batch]));
        if (!decoded.ok) {
          expect(decoded.message.length).toBeGreaterThan(0);
          return;
        }
        expect(decoded.stored).toBe(true);
        try {
          checkClientBatch(Buffer.from(decoded.body));
        } catch (err) {
          expect(err).toBeInstanceOf(ClientBatchError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('checks produce headers by hand exactly as the schema does, for every header it accepts', () => {
    // Each field mostly valid, sometimes just outside what the schema allows.
    const header = fc.record(
      {
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constantFrom('x'.repeat(256), 'x'.repeat(257), 1.5, -1, 2 ** 53, null, true)),
        topic: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(1, null, ['t'])),
        partition: fc.constantFrom(undefined, 0, 3, -1, 1.5, 2 ** 53, '1', null),
        producer: fc.constantFrom(
          undefined,
          { id: 'p', sequence: 0 },
          { id: 'p', sequence: 9 },
          { id: '', sequence: 0 },
          { id: 'p', sequence: -1 },
          { id: 'p', sequence: 0.5 },
          { id: 'p' },
          { id: 'p', sequence: 1, epoch: 1 },
          null,
          [],
          'p',
        ),
        compact_ack: fc.constantFrom(undefined, true, false, 'yes', 1, null),
        extra: fc.constantFrom(undefined, undefined, undefined, 1),
      },
      { requiredKeys: ['id', 'topic'] },
    );
    let accepted = 0;
    fc.assert(
      fc.property(header, (h) => {
        const raw = JSON.parse(JSON.stringify(h)) as Record<string, unknown>; // what the decoder sees
        const fast = checkProduceHeader(raw);
        const schema = produceHeader.safeParse(raw);
        if (fast !== null) {
          accepted++;
          expect(schema.success).toBe(true);
          expect(fast).toEqual(schema.data);
        }
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(0);
    // The headers the SDK sends take the hand-checked path.
    for (const h of [
      { id: 7, topic: 't' },
      { id: 'r-1', topic: 'orders', partition: 3, producer: { id: 'p', sequence: 0 }, compact_ack: true },
    ]) {
      expect(checkProduceHeader(h)).toEqual(h);
    }
  });

  it('describes each kind of bad envelope', () => {
    const ok = produceFrame([{ key: null, value: Buffer.from('1') }]);
    const message = (frame: Uint8Array): string => {
      const d = decodeProduceFrame(frame);
      return d.ok ? 'accepted' : d.message;
    };
    expect(message(ok.subarray(0, 4))).toMatch(/shorter than its envelope/);
    expect(message(Buffer.concat([Buffer.from([0x02]), ok.subarray(1)]))).toMatch(/kind 0x02/);
    expect(message(Buffer.concat([Buffer.from([0x7f]), ok.subarray(1)]))).toMatch(/kind 0x7f/);
    const huge = Buffer.from(ok);
    huge.writeUInt32BE(0xffffffff, 1);
    expect(message(huge)).toMatch(/runs past the end/);
    const notJson = Buffer.concat([Buffer.from([1, 0, 0, 0, 3]), Buffer.from('{x}'), Buffer.alloc(4)]);
    expect(message(notJson)).toMatch(/not UTF-8 JSON/);
    const array = Buffer.concat([Buffer.from([1, 0, 0, 0, 2]), Buffer.from('[]'), Buffer.alloc(4)]);
    expect(message(array)).toMatch(/must be a JSON object/);
    const badUtf8 = Buffer.concat([Buffer.from([1, 0, 0, 0, 2]), Buffer.from([0xc3, 0x28]), Buffer.alloc(4)]);
    expect(message(badUtf8)).toMatch(/not UTF-8 JSON/);
    const unknownField = Buffer.concat([Buffer.from([1, 0, 0, 0, 27]), Buffer.from('{"id":7,"topic":"t","x":1}x'), Buffer.alloc(4)]);
    unknownField.writeUInt32BE(26, 1);
    const d = decodeProduceFrame(unknownField.subarray(0, 5 + 26 + 4));
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.id).toBe(7);
    // A count far larger than the bytes that follow is refused before anything is allocated for it.
    expect(() => decodeProduceRecords(Buffer.alloc(20), 0xffffffff)).toThrow(/does not fit/);
    // Header text that is not UTF-8.
    const record = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 1, 0xc3, 0, 0, 0, 0]);
    expect(() => decodeProduceRecords(record, 1)).toThrow(/not valid UTF-8/);
    // A negative length other than -1.
    expect(() => decodeProduceRecords(Buffer.from([0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0]), 1)).toThrow(/bad key length/);
  });
});
