// appendStored: a batch a client built in the stored layout (binary produce kind 0x05) is checked,
// sealed in place and appended. What is read back must be exactly what append() of the same
// records gives; a malformed batch is refused with InvalidArgumentError and leaves the log as it
// was; no batch, however mangled, gets past the check and then fails to read back.
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryRecordParts, ProduceFrame, STORED_RECORD_EXTRA_BYTES } from '../../src/client/binary.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { InvalidArgumentError, MessageTooLargeError, recordBytes, type ProduceRecord, type StoredRecord } from '../../src/engine/index.js';
import { recordSize } from '../../src/engine/record-size.js';
import { tempDir } from '../helpers/temp-dir.js';

const decoder = new TextDecoder();

/** The batch of a kind 0x05 frame the SDK builds for `records` (the bytes after the frame's JSON header). */
function clientBatch(records: readonly ProduceRecord[], producerId: string | null = null): Buffer {
  const parts = records.map((r) =>
    binaryRecordParts(r.key === null || r.key === undefined ? null : decoder.decode(r.key), r.value, r.headers),
  );
  const size = parts.reduce((n, p) => n + p.size + STORED_RECORD_EXTRA_BYTES, 0);
  const frame = new ProduceFrame(',"topic":"t"', parts, size, undefined, { producerId }).withId(1);
  const headerLength = Buffer.from(frame.buffer, frame.byteOffset).readUInt32BE(1);
  return Buffer.from(frame.subarray(5 + headerLength)); // a copy: tests mangle it
}

const plain = (r: StoredRecord): unknown => ({
  key: r.key === null ? null : Buffer.from(r.key).toString('hex'),
  value: r.value === null ? null : Buffer.from(r.value).toString('hex'),
  headers: r.headers,
});

/** Keys are text on the SDK's side (UTF-8 on the wire). */
const textBytes = fc.option(fc.string({ maxLength: 20 }).map((s) => Buffer.from(s)), { nil: null });
const record = fc.record({
  key: textBytes,
  value: fc.option(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), { nil: null }),
  headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 12 }), { maxKeys: 3 }),
});

describe('appendStored', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  let topics = 0;

  beforeAll(async () => {
    dir = await tempDir('brook-append-stored-');
    engine = new EmbeddedEngine({ dataDir: dir.path, logger: pino({ level: 'silent' }) });
    await engine.open();
  });
  afterAll(async () => {
    await engine.close();
    await dir.remove();
  });

  async function freshTopic(config: { maxRecordBytes?: number } = {}): Promise<string> {
    const name = `s${topics++}`;
    await engine.createTopic(name, { partitions: 1, ...config });
    return name;
  }

  async function readAll(topic: string): Promise<StoredRecord[]> {
    const { highWatermark } = await engine.watermarks(topic, 0);
    return (await engine.read(topic, 0, 0, { maxRecords: highWatermark + 1 })).records;
  }

  it('stores what append() stores for the same records, with the sizes quotas and limits count', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 20 }), async (records) => {
        const viaStored = await freshTopic();
        const viaRecords = await freshTopic();
        const batch = clientBatch(records);
        const info = engine.checkStoredBatch(batch);
        expect(info.count).toBe(records.length);
        expect(info.payloadBytes).toBe(recordBytes(records));
        expect(info.recordBytes).toBe(records.reduce((n, r) => n + recordSize(r), 0));
        const a = await engine.appendStored(viaStored, 0, batch, info);
        const b = await engine.append(viaRecords, 0, records);
        expect(a).toMatchObject({ baseOffset: 0, count: records.length, duplicate: false });
        expect(b.count).toBe(a.count);
        const stored = await readAll(viaStored);
        expect(stored.map(plain)).toEqual((await readAll(viaRecords)).map(plain));
        expect(stored.map((r) => r.offset)).toEqual(records.map((_, i) => i));
      }),
      { numRuns: 25 },
    );
  });

  it('follows earlier batches in offsets and timestamps, and answers a retried idempotent batch as a duplicate', async () => {
    const topic = await freshTopic();
    await engine.append(topic, 0, [{ value: Buffer.from('first') }]);
    const records = [{ value: Buffer.from('a') }, { value: Buffer.from('b') }];
    const producer = { id: 'p-1', sequence: 0 };
    const batch = clientBatch(records, 'p-1');
    const first = await engine.appendStored(topic, 0, batch, engine.checkStoredBatch(batch), { producer });
    expect(first).toMatchObject({ baseOffset: 1, count: 2, duplicate: false });
    const again = clientBatch(records, 'p-1');
    const retry = await engine.appendStored(topic, 0, again, engine.checkStoredBatch(again), { producer });
    expect(retry).toMatchObject({ baseOffset: 1, count: 2, duplicate: true });
    const read = await readAll(topic);
    expect(read.map((r) => r.value?.toString())).toEqual(['first', 'a', 'b']);
    expect(read[2]!.timestamp).toBeGreaterThanOrEqual(read[0]!.timestamp);
  });

  it('refuses a batch whose producer id is not the producer its frame names', async () => {
    const topic = await freshTopic();
    const batch = clientBatch([{ value: Buffer.from('x') }], 'p-1');
    const info = engine.checkStoredBatch(batch);
    await expect(engine.appendStored(topic, 0, batch, info, { producer: { id: 'p-2', sequence: 0 } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(engine.appendStored(topic, 0, batch, info)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await engine.watermarks(topic, 0)).highWatermark).toBe(0);
  });

  it('holds records to the topic max_record_bytes', async () => {
    const topic = await freshTopic({ maxRecordBytes: 100 });
    const batch = clientBatch([{ value: Buffer.alloc(10) }, { value: Buffer.alloc(200) }]);
    await expect(engine.appendStored(topic, 0, batch, engine.checkStoredBatch(batch))).rejects.toBeInstanceOf(MessageTooLargeError);
    expect((await engine.watermarks(topic, 0)).highWatermark).toBe(0);
  });

  describe('malformed batches are refused with what is wrong', () => {
    // One record: key "k", value "v", header h=1, at 56 (no producer id): length, offsetDelta,
    // timestampDelta, key length (+12), "k", value length (+17), "v", header count (+22), name
    // length (+24), "h" (+26), value length (+27), "1".
    const good = (): Buffer => clientBatch([{ key: Buffer.from('k'), value: Buffer.from('v'), headers: { h: '1' } }]);
    const REC = 56;
    const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['too short for a header', (b) => b.subarray(0, 40), /shorter than its 56-byte header/],
      ['wrong magic', (b) => (b.writeUInt32LE(0x12345678, 0), b), /batch magic/],
      ['length other than the frame', (b) => (b.writeUInt32LE(b.length + 1, 4), b), /is not the \d+ bytes the frame holds/],
      ['cut short', (b) => b.subarray(0, b.length - 1), /is not the \d+ bytes the frame holds/],
      ['unknown version', (b) => ((b[12] = 9), b), /version 9/],
      ['attributes set', (b) => ((b[13] = 1), b), /attributes must be 0/],
      ['producer id longer than 64 bytes', (b) => (b.writeUInt16LE(65, 14), b), /producer id length 65/],
      ['no records', (b) => (b.writeUInt32LE(0, 24), b), /at least one record/],
      ['last offset delta not count − 1', (b) => (b.writeUInt32LE(5, 28), b), /lastOffsetDelta 5/],
      ['more records than bytes', (b) => (b.writeUInt32LE(1000, 24), b.writeUInt32LE(999, 28), b), /do not fit/],
      ['record length past the end', (b) => (b.writeUInt32LE(10_000, REC), b), /runs past the batch end/],
      ['offset delta not the index', (b) => (b.writeUInt32LE(3, REC + 4), b), /offsetDelta 3 is not its index/],
      ['timestamp delta set', (b) => (b.writeUInt32LE(7, REC + 8), b), /timestampDelta must be 0/],
      ['key length below −1', (b) => (b.writeInt32LE(-2, REC + 12), b), /bad key length -2/],
      ['value length past the record', (b) => (b.writeInt32LE(500, REC + 17), b), /bad value length 500/],
      ['header name not UTF-8', (b) => ((b[REC + 26] = 0xff), b), /header 0 name is not UTF-8/],
      ['header value past the record', (b) => (b.writeUInt32LE(99, REC + 27), b), /value runs past the record/],
      ['a byte after the last field', (b) => (b.writeUInt32LE(b.readUInt32LE(REC) + 1, REC), Buffer.concat([b, Buffer.alloc(1)])), /is not the \d+ bytes|bytes after its last field/],
      ['bytes after the last record', (b) => { const out = Buffer.concat([b, Buffer.alloc(3)]); out.writeUInt32LE(out.length, 4); return out; }, /3 bytes after the last of 1 records/],
    ];
    it.each(cases)('%s', async (_what, mangle, message) => {
      const topic = await freshTopic();
      const batch = good();
      expect(() => engine.checkStoredBatch(good())).not.toThrow();
      let thrown: unknown;
      try {
        engine.checkStoredBatch(mangle(batch));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(InvalidArgumentError);
      expect((thrown as Error).message).toMatch(message);
      expect((await engine.watermarks(topic, 0)).highWatermark).toBe(0);
    });

    it('a header named twice', () => {
      const batch = clientBatch([{ value: Buffer.from('v'), headers: { h: '1', g: '2' } }]);
      const at = batch.indexOf('g', REC);
      batch[at] = 'h'.charCodeAt(0);
      expect(() => engine.checkStoredBatch(batch)).toThrow(/header "h" appears twice/);
    });
  });

  it('a batch with any bytes changed is refused or, if accepted, reads back whole', async () => {
    // Whatever a client sends, the check is the gate: nothing it lets through may make the log
    // unreadable (a flipped payload byte is data; a flipped length must be caught).
    const topic = await freshTopic();
    let appended = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(record, { minLength: 1, maxLength: 5 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        async (records, flips) => {
          const batch = clientBatch(records);
          for (const [at, xor] of flips) batch[8 + (at % (batch.length - 8))]! ^= xor; // the CRC (bytes 8-11) is the server's
          let info;
          try {
            info = engine.checkStoredBatch(batch);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidArgumentError);
            return;
          }
          try {
            await engine.appendStored(topic, 0, batch, info);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidArgumentError); // e.g. a producer id where there was none
            return;
          }
          appended += info.count;
          const read = await readAll(topic);
          expect(read).toHaveLength(appended);
        },
      ),
      { numRuns: 200 },
    );
  });
});
