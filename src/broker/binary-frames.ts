/**
 * The record-carrying frames of the binary subprotocol `brook.v1.bin` (docs/protocol.md,
 * "Binary subprotocol"). Values are opaque bytes: decoded produce records are slices of the
 * frame (the engine copies them into its batch on append), and pushes copy stored bytes into one
 * Buffer per frame, sized before it is written.
 *
 * ```
 * frame   = u8 kind · u32 headerLength · header (UTF-8 JSON) · u32 recordCount · record*
 * record  = [u64 offset · u64 timestamp]                 (server → client kinds only)
 *           i32 keyLength (-1 = null) · key · i32 valueLength (-1 = null) · value
 *           u16 headerCount · { u16 nameLength · name · u32 valueLength · value }*
 * ```
 *
 * Integers are big-endian.
 */
import type { z } from 'zod';
import type { ProduceRecord, RecordHeaders, StoredRecord } from '../engine/index.js';
import { MAX_NAME_LENGTH } from './defaults.js';
import { produceHeader, requestId } from './frames.js';

export const BinaryKind = {
  /** client → server: a `produce` */
  produce: 0x01,
  /** server → client: a `records` push */
  records: 0x02,
  /** server → client: a `fetched` reply */
  fetched: 0x03,
  /** server → client: a push of whole stored batches */
  stored: 0x04,
  /** client → server: a `produce` whose records are one batch in the stored layout */
  storedProduce: 0x05,
} as const;
export type BinaryKind = (typeof BinaryKind)[keyof typeof BinaryKind];

/** kind + header length + record count. */
const FRAME_FIXED_BYTES = 9;
/** A stored batch's header up to and including its record count (u32 LE at +24). */
const STORED_COUNT_END = 28;
/** key length + value length + header count. */
const RECORD_FIXED_BYTES = 10;
/** offset + timestamp, present in server → client records. */
const POSITION_BYTES = 16;
/** name length + value length of one header. */
const HEADER_FIXED_BYTES = 6;
const TWO_POW_32 = 2 ** 32;
/** The high word of a u64 below 2^53. */
const MAX_HIGH_WORD = 2 ** 21 - 1;
const MAX_HEADERS = 0xffff;

/** The non-record fields of a binary produce (the JSON `produce` schema without `type` and `records`). */
export { produceHeader };
export type BinaryProduceHeader = z.infer<typeof produceHeader>;

export type DecodedBinaryProduce =
  | {
      readonly ok: true;
      readonly header: BinaryProduceHeader;
      readonly recordCount: number;
      /**
       * Kind 0x01: the encoded records; decode with {@link decodeProduceRecords} once the frame is
       * admitted. Kind 0x05 (`stored`): the client-built batch, checked by the engine.
       */
      readonly body: Uint8Array;
      readonly stored: boolean;
    }
  | { readonly ok: false; readonly id: string | number | undefined; readonly message: string };

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a binary client frame's envelope: kind, header and record count. Never throws. The records
 * are left encoded, so a frame refused by flow control or the batch bound costs no more than this.
 */
export function decodeProduceFrame(frame: Uint8Array): DecodedBinaryProduce {
  if (frame.length < FRAME_FIXED_BYTES) return invalid(undefined, `binary frame of ${frame.length} bytes is shorter than its envelope`);
  const kind = frame[0]!;
  if (kind !== BinaryKind.produce && kind !== BinaryKind.storedProduce) {
    return invalid(undefined, `binary frame kind 0x${kind.toString(16).padStart(2, '0')} is not one a client sends (0x01 or 0x05 produce)`);
  }
  const stored = kind === BinaryKind.storedProduce;
  const view = viewOf(frame);
  const headerLength = view.getUint32(1);
  const headerEnd = 5 + headerLength;
  // Kind 0x01 has its record count after the header; 0x05 has its batch (count at +24).
  const after = stored ? STORED_COUNT_END : 4;
  if (headerEnd + after > frame.length) return invalid(undefined, `binary frame header length ${headerLength} runs past the end of the frame`);
  let raw: unknown;
  try {
    raw = JSON.parse(fatalUtf8.decode(frame.subarray(5, headerEnd)));
  } catch (err) {
    return invalid(undefined, `binary frame header is not UTF-8 JSON: ${(err as Error).message.slice(0, 200)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return invalid(undefined, 'binary frame header must be a JSON object');
  let header = checkProduceHeader(raw as Record<string, unknown>);
  if (header === null) {
    const parsed = produceHeader.safeParse(raw);
    if (!parsed.success) {
      const id = requestId.safeParse((raw as Record<string, unknown>)['id']);
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return invalid(id.success ? id.data : undefined, `invalid binary produce header: ${where}${issue?.message ?? 'invalid'}`.slice(0, 300));
    }
    header = parsed.data;
  }
  if (stored) return { ok: true, header, recordCount: view.getUint32(headerEnd + 24, true), body: frame.subarray(headerEnd), stored };
  return { ok: true, header, recordCount: view.getUint32(headerEnd), body: frame.subarray(headerEnd + 4), stored };
}

const HEADER_KEYS: ReadonlySet<string> = new Set(['id', 'topic', 'partition', 'producer', 'compact_ack']);
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * The produce header schema, checked by hand: the header of every binary produce went through
 * zod's object parse, a tenth of the server's garbage at 10,000 small produces a second. It
 * accepts a subset of what {@link produceHeader} accepts (a property test holds them together),
 * and returns null for anything else: the schema then decides, and words the error.
 */
export function checkProduceHeader(raw: Record<string, unknown>): BinaryProduceHeader | null {
  for (const key in raw) if (!HEADER_KEYS.has(key)) return null;
  const { id, topic, partition, producer, compact_ack: compactAck } = raw;
  if (typeof id === 'number' ? !Number.isSafeInteger(id) : typeof id !== 'string' || id.length > MAX_NAME_LENGTH) return null;
  if (typeof topic !== 'string') return null;
  if (partition !== undefined && !isCount(partition)) return null;
  if (compactAck !== undefined && typeof compactAck !== 'boolean') return null;
  if (producer !== undefined) {
    if (typeof producer !== 'object' || producer === null || Array.isArray(producer)) return null;
    const p = producer as Record<string, unknown>;
    for (const key in p) if (key !== 'id' && key !== 'sequence') return null;
    if (typeof p['id'] !== 'string' || p['id'].length === 0 || !isCount(p['sequence'])) return null;
  }
  return raw as BinaryProduceHeader;
}

/** Thrown by {@link decodeProduceRecords}; the session answers it with INVALID_FRAME. */
export class BinaryFrameError extends Error {
  readonly code = 'INVALID_FRAME';
  constructor(message: string) {
    super(message);
    this.name = 'BinaryFrameError';
  }
}

/**
 * The records of a binary produce, as engine records whose key and value are slices of `body`
 * (the engine copies them on append). Throws BinaryFrameError unless `body` holds exactly
 * `count` well-formed records.
 */
export function decodeProduceRecords(body: Uint8Array, count: number): ProduceRecord[] {
  return decodeRecords(body, count, false);
}

/** Records of either direction: with `positions`, each starts with its offset and timestamp. */
function decodeRecords(body: Uint8Array, count: number, positions: false): ProduceRecord[];
function decodeRecords(body: Uint8Array, count: number, positions: true): StoredRecord[];
function decodeRecords(body: Uint8Array, count: number, positions: boolean): (ProduceRecord | StoredRecord)[] {
  const view = viewOf(body);
  const end = body.length;
  const fixed = RECORD_FIXED_BYTES + (positions ? POSITION_BYTES : 0);
  // Each record takes at least `fixed` bytes: a count the body cannot hold is refused before allocating for it.
  if (count * fixed > end) throw new BinaryFrameError(`record count ${count} does not fit in ${end} bytes of records`);
  const out = new Array<ProduceRecord | StoredRecord>(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + fixed > end) throw truncated(i);
    let offset = 0;
    let timestamp = 0;
    if (positions) {
      const high = view.getUint32(pos);
      const timeHigh = view.getUint32(pos + 8);
      if (high > MAX_HIGH_WORD || timeHigh > MAX_HIGH_WORD) throw new BinaryFrameError(`record ${i}: offset or timestamp past 2^53`);
      offset = high * TWO_POW_32 + view.getUint32(pos + 4);
      timestamp = timeHigh * TWO_POW_32 + view.getUint32(pos + 12);
      pos += POSITION_BYTES;
    }
    const keyLength = view.getInt32(pos);
    pos += 4;
    let key: Uint8Array | null = null;
    if (keyLength >= 0) {
      if (pos + keyLength > end) throw new BinaryFrameError(`record ${i}: key length ${keyLength} runs past the end of the frame`);
      key = body.subarray(pos, pos + keyLength);
      pos += keyLength;
    } else if (keyLength !== -1) throw new BinaryFrameError(`record ${i}: bad key length ${keyLength}`);
    if (pos + 6 > end) throw truncated(i);
    const valueLength = view.getInt32(pos);
    pos += 4;
    let value: Uint8Array | null = null;
    if (valueLength >= 0) {
      if (pos + valueLength > end) throw new BinaryFrameError(`record ${i}: value length ${valueLength} runs past the end of the frame`);
      value = body.subarray(pos, pos + valueLength);
      pos += valueLength;
    } else if (valueLength !== -1) throw new BinaryFrameError(`record ${i}: bad value length ${valueLength}`);
    if (pos + 2 > end) throw truncated(i);
    const headerCount = view.getUint16(pos);
    pos += 2;
    let headers: Record<string, string> | undefined;
    if (headerCount > 0) {
      headers = {};
      for (let h = 0; h < headerCount; h++) {
        if (pos + 2 > end) throw truncated(i);
        const nameLength = view.getUint16(pos);
        pos += 2;
        if (pos + nameLength + 4 > end) throw new BinaryFrameError(`record ${i}: header name length ${nameLength} runs past the end of the frame`);
        const name = utf8(body, pos, nameLength, i);
        pos += nameLength;
        const headerValueLength = view.getUint32(pos);
        pos += 4;
        if (pos + headerValueLength > end) {
          throw new BinaryFrameError(`record ${i}: header value length ${headerValueLength} runs past the end of the frame`);
        }
        headers[name] = utf8(body, pos, headerValueLength, i);
        pos += headerValueLength;
      }
    }
    if (positions) out[i] = { offset, timestamp, key, value, headers: headers ?? {} };
    else out[i] = headers === undefined ? { key, value } : { key, value, headers };
  }
  if (pos !== end) throw new BinaryFrameError(`${end - pos} bytes after the last of ${count} records`);
  return out;
}

/**
 * A stored record's size in a server → client frame, which is what byte credit counts in binary
 * mode: `26 + key + value + Σ(6 + name + value)`.
 */
export function binaryRecordSize(record: StoredRecord): number {
  let size = POSITION_BYTES + RECORD_FIXED_BYTES;
  if (record.key !== null) size += record.key.length;
  if (record.value !== null) size += record.value.length;
  const headers = record.headers;
  for (const name in headers) size += HEADER_FIXED_BYTES + Buffer.byteLength(name) + Buffer.byteLength(headers[name]!);
  return size;
}

/**
 * One server → client frame with the first `count` of `records`, whose sizes (from
 * {@link binaryRecordSize}) add up to `recordBytes`. One allocation per frame.
 */
export function encodeRecordFrame(
  kind: typeof BinaryKind.records | typeof BinaryKind.fetched,
  header: object,
  records: readonly StoredRecord[],
  count: number,
  recordBytes: number,
): Buffer {
  const headerJson = JSON.stringify(header);
  const headerLength = Buffer.byteLength(headerJson);
  const buf = Buffer.allocUnsafe(FRAME_FIXED_BYTES + headerLength + recordBytes);
  buf[0] = kind;
  buf.writeUInt32BE(headerLength, 1);
  buf.write(headerJson, 5, 'utf8');
  let pos = 5 + headerLength;
  buf.writeUInt32BE(count, pos);
  pos += 4;
  for (let i = 0; i < count; i++) {
    const r = records[i]!;
    pos = writeU64(buf, pos, r.offset);
    pos = writeU64(buf, pos, r.timestamp);
    pos = writeBytes(buf, pos, r.key);
    pos = writeBytes(buf, pos, r.value);
    pos = writeHeaders(buf, pos, r.headers);
  }
  if (pos !== buf.length) throw new Error(`binary frame size mismatch: wrote ${pos} of ${buf.length} bytes`);
  return buf;
}

/** Stored layout (docs/storage-format.md, little-endian): the batch header's fields the transcoder reads… */
const BATCH_HEADER_BYTES = 56;
const BATCH_PRODUCER_ID_LENGTH_AT = 14;
const BATCH_BASE_OFFSET_AT = 16;
const BATCH_COUNT_AT = 24;
const BATCH_FIRST_TIMESTAMP_AT = 32;
/** …and a record's: u32 length (of what follows) · u32 offset delta · u32 timestamp delta · the push body. */
const STORED_RECORD_PREFIX_BYTES = 12;
/** What a record weighs in a push beyond its stored length field's value: 16 (positions) − 8 (deltas). */
const PUSH_SIZE_OVER_STORED_LENGTH = POSITION_BYTES - 8;

export interface BatchRecordsPush {
  /** Records the frame carries: the first ones at or after `from`; 0 when the first did not fit. */
  readonly sent: number;
  /** Their size as byte credit counts it ({@link binaryRecordSize}). */
  readonly bytes: number;
  /** Their key, value and header bytes (what metrics count, recordBytes). */
  readonly payloadBytes: number;
  /** When nothing fit: the first record's size, the byte credit it needs. */
  readonly firstSize: number;
  /** The frame's `next_offset`. */
  readonly nextOffset: number;
  readonly frame: Buffer | null;
}

/**
 * A `records` push built straight from stored batches (Engine.readStored), of the records at or
 * after `from`: as many as `maxRecords` and, when `countBytes`, `maxBytes` allow. A record's
 * stored bytes after its offset and timestamp deltas are already its push body, with
 * little-endian lengths: they are copied once and their lengths turned big-endian in place, so
 * no record becomes an object (the same frame as {@link encodeRecordFrame} of the decoded
 * records). `readNextOffset` is where the read ended; `header` makes the envelope for the
 * frame's `next_offset`. Throws when a record's fields run past it (a batch that passed its
 * checks cannot).
 */
export function encodeRecordFrameFromBatches(
  header: (nextOffset: number) => object,
  batches: readonly Uint8Array[],
  from: number,
  readNextOffset: number,
  maxRecords: number,
  countBytes: boolean,
  maxBytes: number,
): BatchRecordsPush {
  // Sizing pass: lengths only.
  let sent = 0;
  let bytes = 0;
  let nextOffset = readNextOffset;
  let firstSize = 1;
  sizing: for (const batch of batches) {
    const view = viewOf(batch);
    const base = readU64LE(view, BATCH_BASE_OFFSET_AT);
    const count = view.getUint32(BATCH_COUNT_AT, true);
    let p = BATCH_HEADER_BYTES + view.getUint16(BATCH_PRODUCER_ID_LENGTH_AT, true);
    for (let i = 0; i < count; i++) {
      const length = view.getUint32(p, true);
      const offset = base + view.getUint32(p + 4, true);
      if (offset >= from) {
        const size = length + PUSH_SIZE_OVER_STORED_LENGTH;
        if (sent >= maxRecords) {
          if (sent > 0) nextOffset = offset;
          break sizing;
        }
        if (countBytes && bytes + size > maxBytes) {
          nextOffset = offset;
          if (sent === 0) firstSize = size;
          break sizing;
        }
        sent++;
        bytes += size;
      }
      p += 4 + length;
    }
  }
  if (sent === 0) return { sent: 0, bytes: 0, payloadBytes: 0, firstSize, nextOffset, frame: null };

  const headerJson = JSON.stringify(header(nextOffset));
  const headerLength = Buffer.byteLength(headerJson);
  const buf = Buffer.allocUnsafe(FRAME_FIXED_BYTES + headerLength + bytes);
  buf[0] = BinaryKind.records;
  writeU32(buf, 1, headerLength);
  buf.write(headerJson, 5, 'utf8');
  let pos = 5 + headerLength;
  writeU32(buf, pos, sent);
  pos += 4;
  // Copying pass.
  let left = sent;
  let payloadBytes = 0;
  for (let b = 0; b < batches.length && left > 0; b++) {
    const batch = batches[b]!;
    const view = viewOf(batch);
    const base = readU64LE(view, BATCH_BASE_OFFSET_AT);
    const firstTimestamp = readU64LE(view, BATCH_FIRST_TIMESTAMP_AT);
    const count = view.getUint32(BATCH_COUNT_AT, true);
    let p = BATCH_HEADER_BYTES + view.getUint16(BATCH_PRODUCER_ID_LENGTH_AT, true);
    for (let i = 0; i < count && left > 0; i++) {
      const recordEnd = p + 4 + view.getUint32(p, true);
      const offset = base + view.getUint32(p + 4, true);
      if (offset >= from) {
        pos = writeU64(buf, pos, offset);
        pos = writeU64(buf, pos, firstTimestamp + view.getUint32(p + 8, true));
        const body = p + STORED_RECORD_PREFIX_BYTES;
        buf.set(batch.subarray(body, recordEnd), pos);
        payloadBytes += swapBodyLengths(buf, pos, recordEnd - body);
        pos += recordEnd - body;
        left--;
      }
      p = recordEnd;
    }
  }
  if (pos !== buf.length) throw new Error(`binary frame size mismatch: wrote ${pos} of ${buf.length} bytes`);
  return { sent, bytes, payloadBytes, firstSize: 0, nextOffset, frame: buf };
}

/**
 * Turns the little-endian lengths of the record body at `start` (`length` bytes: key, value,
 * headers) big-endian in place; returns its key, value and header bytes.
 */
function swapBodyLengths(buf: Buffer, start: number, length: number): number {
  const end = start + length;
  let q = start;
  let payload = 0;
  for (let field = 0; field < 2; field++) {
    if (q + 4 > end) throw new Error('a stored record ends inside its key or value length');
    const n = buf.readInt32LE(q);
    swap4(buf, q);
    q += 4;
    if (n > 0) {
      q += n;
      payload += n;
    } else if (n < -1) throw new Error(`a stored record has a key or value length of ${n}`);
  }
  if (q + 2 > end) throw new Error('a stored record ends inside its header count');
  const headers = buf.readUInt16LE(q);
  swap2(buf, q);
  q += 2;
  for (let h = 0; h < headers; h++) {
    if (q + 2 > end) throw new Error('a stored record ends inside a header');
    const nameLength = buf.readUInt16LE(q);
    swap2(buf, q);
    q += 2 + nameLength;
    if (q + 4 > end) throw new Error('a stored record ends inside a header');
    const valueLength = buf.readUInt32LE(q);
    swap4(buf, q);
    q += 4 + valueLength;
    payload += nameLength + valueLength;
  }
  if (q !== end) throw new Error('a stored record\'s length disagrees with its fields');
  return payload;
}

function swap4(buf: Buffer, at: number): void {
  const b0 = buf[at]!;
  const b1 = buf[at + 1]!;
  buf[at] = buf[at + 3]!;
  buf[at + 1] = buf[at + 2]!;
  buf[at + 2] = b1;
  buf[at + 3] = b0;
}

function swap2(buf: Buffer, at: number): void {
  const b0 = buf[at]!;
  buf[at] = buf[at + 1]!;
  buf[at + 1] = b0;
}

function readU64LE(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * TWO_POW_32 + view.getUint32(at, true);
}

/**
 * A `stored` push: the envelope, then `batches` exactly as the engine stores them
 * (docs/storage-format.md), whose lengths add up to `bytes`. One allocation and one copy per frame.
 */
export function encodeStoredFrame(header: object, batches: readonly Uint8Array[], bytes: number): Buffer {
  const headerJson = JSON.stringify(header);
  const headerLength = Buffer.byteLength(headerJson);
  const buf = Buffer.allocUnsafe(5 + headerLength + bytes);
  buf[0] = BinaryKind.stored;
  writeU32(buf, 1, headerLength);
  buf.write(headerJson, 5, 'utf8');
  let pos = 5 + headerLength;
  for (const batch of batches) {
    buf.set(batch, pos);
    pos += batch.byteLength;
  }
  if (pos !== buf.length) throw new Error(`stored frame size mismatch: wrote ${pos} of ${buf.length} bytes`);
  return buf;
}

/** A binary produce frame (what the SDK sends); used by tests and tools on Node. */
export function encodeProduceFrame(header: BinaryProduceHeader, records: readonly ProduceRecord[]): Buffer {
  const headerJson = JSON.stringify(header);
  const headerLength = Buffer.byteLength(headerJson);
  let size = FRAME_FIXED_BYTES + headerLength;
  for (const r of records) {
    size += RECORD_FIXED_BYTES + (r.key?.length ?? 0) + (r.value?.length ?? 0);
    for (const name in r.headers ?? {}) size += HEADER_FIXED_BYTES + Buffer.byteLength(name) + Buffer.byteLength(r.headers![name]!);
  }
  const buf = Buffer.allocUnsafe(size);
  buf[0] = BinaryKind.produce;
  buf.writeUInt32BE(headerLength, 1);
  buf.write(headerJson, 5, 'utf8');
  let pos = 5 + headerLength;
  buf.writeUInt32BE(records.length, pos);
  pos += 4;
  for (const r of records) {
    pos = writeBytes(buf, pos, r.key ?? null);
    pos = writeBytes(buf, pos, r.value);
    pos = writeHeaders(buf, pos, r.headers ?? {});
  }
  return buf;
}

export interface DecodedRecordFrame {
  readonly kind: number;
  readonly header: Record<string, unknown>;
  readonly records: StoredRecord[];
}

/** Decodes a server → client frame (for tests and tools on Node; the SDK has its own decoder). Throws BinaryFrameError. */
export function decodeRecordFrame(frame: Uint8Array): DecodedRecordFrame {
  if (frame.length < FRAME_FIXED_BYTES) throw new BinaryFrameError('frame shorter than its envelope');
  const kind = frame[0]!;
  const view = viewOf(frame);
  const headerLength = view.getUint32(1);
  const headerEnd = 5 + headerLength;
  if (headerEnd + 4 > frame.length) throw new BinaryFrameError('header runs past the end');
  const header = JSON.parse(fatalUtf8.decode(frame.subarray(5, headerEnd))) as Record<string, unknown>;
  return { kind, header, records: decodeRecords(frame.subarray(headerEnd + 4), view.getUint32(headerEnd), true) };
}

/*
 * The two writers below run twice per pushed record: they store bytes themselves, since
 * Buffer's writeUInt32BE checks its arguments on every call (a tenth of the server's time
 * pushing 100 B records). Callers size the buffer first, so every position is in range.
 */

function writeU64(buf: Buffer, pos: number, value: number): number {
  writeU32(buf, pos, Math.floor(value / TWO_POW_32));
  writeU32(buf, pos + 4, value >>> 0);
  return pos + 8;
}

function writeBytes(buf: Buffer, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    writeU32(buf, pos, 0xffffffff); // i32 -1
    return pos + 4;
  }
  writeU32(buf, pos, bytes.length);
  buf.set(bytes, pos + 4);
  return pos + 4 + bytes.length;
}

/** Big-endian u32 (stores truncate to a byte). */
function writeU32(buf: Buffer, pos: number, value: number): void {
  buf[pos] = value >>> 24;
  buf[pos + 1] = value >>> 16;
  buf[pos + 2] = value >>> 8;
  buf[pos + 3] = value;
}

function writeHeaders(buf: Buffer, pos: number, headers: RecordHeaders): number {
  const countAt = pos;
  pos += 2;
  let n = 0;
  for (const name in headers) {
    const nameLength = buf.write(name, pos + 2, 'utf8');
    buf.writeUInt16BE(nameLength, pos);
    pos += 2 + nameLength;
    const valueLength = buf.write(headers[name]!, pos + 4, 'utf8');
    buf.writeUInt32BE(valueLength, pos);
    pos += 4 + valueLength;
    if (++n > MAX_HEADERS) throw new Error(`more than ${MAX_HEADERS} headers on one record`);
  }
  buf.writeUInt16BE(n, countAt);
  return pos;
}

function utf8(bytes: Uint8Array, pos: number, length: number, index: number): string {
  try {
    return fatalUtf8.decode(bytes.subarray(pos, pos + length));
  } catch {
    // The decoder's own message says nothing more than this.
    throw new BinaryFrameError(`record ${index}: a header name or value is not valid UTF-8`);
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function truncated(index: number): BinaryFrameError {
  return new BinaryFrameError(`record ${index} is truncated`);
}

function invalid(id: string | number | undefined, message: string): DecodedBinaryProduce {
  return { ok: false, id, message };
}
