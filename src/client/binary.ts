/**
 * The SDK's side of the binary subprotocol `brook.v1.bin` (docs/protocol.md, "Binary
 * subprotocol"): produce frames out, `records` pushes in. Browser-safe: Uint8Array, DataView,
 * TextEncoder and TextDecoder only.
 *
 * ```
 * frame   = u8 kind · u32 headerLength · header (UTF-8 JSON) · u32 recordCount · record*
 * record  = [u64 offset · u64 timestamp]                 (server → client only)
 *           i32 keyLength (-1 = null) · key · i32 valueLength (-1 = null) · value
 *           u16 headerCount · { u16 nameLength · name · u32 valueLength · value }*
 * ```
 */
import { crc32 } from './crc32.js';
import { ProtocolError } from './errors.js';
import type { RecordsFrame, WireRecord } from './wire.js';
import { utf8Length } from './utf8.js';

export const BINARY_KIND_PRODUCE = 0x01;
export const BINARY_KIND_RECORDS = 0x02;
export const BINARY_KIND_STORED = 0x04;
export const BINARY_KIND_STORED_PRODUCE = 0x05;
/** What a record takes in a stored batch beyond its 0x01 encoding: length, offset and timestamp deltas. */
export const STORED_RECORD_EXTRA_BYTES = 12;
/** Stored batch layout (docs/storage-format.md): little-endian, CRC-32 of bytes [12, length). */
const BATCH_MAGIC = 0x4b4f5242;
const BATCH_VERSION = 1;
const BATCH_HEADER_BYTES = 56;
/** record length, offset delta, timestamp delta, key length, value length, header count */
const STORED_RECORD_FIXED_BYTES = 22;
/** kind + header length + record count. */
const FRAME_FIXED_BYTES = 9;
/** key length + value length + header count. */
export const BINARY_RECORD_FIXED_BYTES = 10;
export const BINARY_HEADER_FIXED_BYTES = 6;
const POSITION_BYTES = 16;
const TWO_POW_32 = 2 ** 32;
const MAX_HIGH_WORD = 2 ** 21 - 1;


const encoder = new TextEncoder();
const decoder = new TextDecoder();
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * A record's parts as they go into a produce frame. Text (the key, a value's JSON, header names
 * and values) stays a string with its UTF-8 length and is encoded straight into the frame: one
 * Uint8Array per record, then a copy into the frame, was most of a small record's garbage.
 */
export interface BinaryRecordParts {
  readonly key: string | null;
  readonly keyBytes: number;
  /** Raw bytes, or text written as UTF-8. */
  readonly value: Uint8Array | string | null;
  readonly valueBytes: number;
  /** Header names and values, alternating. */
  readonly headers: readonly string[];
  /** Bytes this record takes in a produce frame. */
  readonly size: number;
}

const NO_HEADERS: readonly string[] = Object.freeze([]);

/** Records already encoded in a produce frame: the bytes after its record count. */
interface EncodedRecords {
  readonly count: number;
  readonly bytes: Uint8Array;
}

export function binaryRecordParts(
  key: string | null,
  value: Uint8Array | string | null,
  headers: Readonly<Record<string, string>> | undefined,
): BinaryRecordParts {
  const keyBytes = key === null ? 0 : utf8Length(key);
  const valueBytes = value === null ? 0 : typeof value === 'string' ? utf8Length(value) : value.length;
  let size = BINARY_RECORD_FIXED_BYTES + keyBytes + valueBytes;
  let headerList = NO_HEADERS;
  if (headers !== undefined) {
    const list: string[] = [];
    for (const name in headers) {
      const v = headers[name]!;
      list.push(name, v);
      size += BINARY_HEADER_FIXED_BYTES + utf8Length(name) + utf8Length(v);
    }
    headerList = list;
  }
  return { key, keyBytes, value, valueBytes, headers: headerList, size };
}

/**
 * A batch's produce frame, encoded once: the records go behind room for the largest header the
 * batch can have, and each send writes its header (a new request id) into that room, padded with
 * spaces (JSON allows them), so neither a send nor a retry copies the records again. At 1 KB
 * records the extra copy of every batch behind its header was a visible share of the publisher.
 *
 * Two layouts (docs/protocol.md): kind 0x01, records after a big-endian count; or, where the
 * server offers `stored_produce`, kind 0x05, the records as one batch in the server's stored
 * layout (docs/storage-format.md, little-endian), which the server seals and stores as it is.
 * The batch header carries the producer id; the server fills in offsets, timestamps, producer
 * sequence and CRC.
 */
export class ProduceFrame {
  private readonly buf: Uint8Array;
  private readonly headerRoom: number;
  /** The memory the frame was written into: all of `spare` when one was used, else `buf`. */
  readonly storage: Uint8Array;

  /** Where the records start in `buf`; their count is `count`. */
  private readonly recordsStart: number;
  private readonly count: number;

  /**
   * `fields`: the header's JSON members after `"id"` (`,"topic":…`), the same for every send of
   * the batch. `recordsSize`: the records' bytes in the chosen layout. `spare`: memory of a
   * settled batch's frame to write into instead of allocating, used when it is large enough and
   * not more than twice the size needed. `stored`: kind 0x05, with the producer id its batch
   * header carries (null: none); absent, kind 0x01.
   */
  constructor(
    readonly fields: string,
    records: readonly BinaryRecordParts[] | EncodedRecords,
    recordsSize: number,
    spare?: Uint8Array,
    readonly stored?: { readonly producerId: string | null },
  ) {
    this.headerRoom = utf8Length(`{"id":${Number.MAX_SAFE_INTEGER}${fields}}`);
    const pid = stored === undefined || stored.producerId === null ? null : encoder.encode(stored.producerId);
    const prefix = 5 + this.headerRoom + (stored === undefined ? 4 : BATCH_HEADER_BYTES + (pid?.length ?? 0));
    const size = prefix + recordsSize;
    const fits = spare !== undefined && spare.length >= size && spare.length <= 2 * size;
    this.storage = fits ? spare : new Uint8Array(size);
    const out = fits ? spare.subarray(0, size) : this.storage;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    this.count = 'bytes' in records ? records.count : records.length;
    this.recordsStart = prefix;
    out[0] = stored === undefined ? BINARY_KIND_PRODUCE : BINARY_KIND_STORED_PRODUCE;
    view.setUint32(1, this.headerRoom);
    if (stored === undefined) view.setUint32(5 + this.headerRoom, this.count);
    else writeBatchHeader(out, view, 5 + this.headerRoom, size - 5 - this.headerRoom, this.count, pid);
    let pos = prefix;
    if ('bytes' in records) {
      out.set(records.bytes, pos);
      pos += records.bytes.length;
    } else if (stored === undefined) {
      for (const r of records) pos = writeRecord(out, view, pos, r);
    } else {
      for (let i = 0; i < records.length; i++) pos = writeStoredRecord(out, view, pos, records[i]!, i);
    }
    if (pos !== out.length) throw new Error(`produce frame size mismatch: wrote ${pos} of ${out.length} bytes`);
    this.buf = out;
  }

  /**
   * The same records under other header fields (a retry under a new producer id or sequence),
   * copied as they are: the producer keeps no record's parts once its frame is encoded. A stored
   * batch takes the new producer id into its header.
   */
  withFields(fields: string, spare?: Uint8Array, producerId?: string | null): ProduceFrame {
    const bytes = this.buf.subarray(this.recordsStart);
    const stored = this.stored === undefined ? undefined : { producerId: producerId === undefined ? this.stored.producerId : producerId };
    return new ProduceFrame(fields, { count: this.count, bytes }, bytes.length, spare === this.storage ? undefined : spare, stored);
  }

  /**
   * The same records as a kind 0x01 frame: for a retry on a connection whose server does not
   * offer `stored_produce` (the batch was built for one that did).
   */
  asKind01(fields: string, spare?: Uint8Array): ProduceFrame {
    if (this.stored === undefined) return this.withFields(fields, spare);
    const src = this.buf;
    const from = new DataView(src.buffer, src.byteOffset, src.byteLength);
    const bytes = new Uint8Array(src.length - this.recordsStart - STORED_RECORD_EXTRA_BYTES * this.count);
    const to = new DataView(bytes.buffer);
    let p = this.recordsStart;
    let q = 0;
    for (let i = 0; i < this.count; i++) {
      const end = p + 4 + from.getUint32(p, true);
      p += 12;
      for (let field = 0; field < 2; field++) {
        const length = from.getInt32(p, true);
        to.setInt32(q, length);
        const n = Math.max(0, length);
        bytes.set(src.subarray(p + 4, p + 4 + n), q + 4);
        p += 4 + n;
        q += 4 + n;
      }
      const headerCount = from.getUint16(p, true);
      to.setUint16(q, headerCount);
      p += 2;
      q += 2;
      for (let h = 0; h < headerCount; h++) {
        const nameLength = from.getUint16(p, true);
        to.setUint16(q, nameLength);
        bytes.set(src.subarray(p + 2, p + 2 + nameLength), q + 2);
        p += 2 + nameLength;
        q += 2 + nameLength;
        const valueLength = from.getUint32(p, true);
        to.setUint32(q, valueLength);
        bytes.set(src.subarray(p + 4, p + 4 + valueLength), q + 4);
        p += 4 + valueLength;
        q += 4 + valueLength;
      }
      if (p !== end) throw new Error(`stored record ${i} does not end where its length says`);
    }
    return new ProduceFrame(fields, { count: this.count, bytes }, bytes.length, spare === this.storage ? undefined : spare);
  }

  /** The frame with request id `id` (the same buffer each time: send it before asking for another). */
  withId(id: number): Uint8Array {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`request id ${id} is not a non-negative safe integer`);
    const room = this.buf.subarray(5, 5 + this.headerRoom);
    const { written } = encoder.encodeInto(`{"id":${id}${this.fields}}`, room);
    room.fill(0x20, written);
    return this.buf;
  }
}

/** A kind 0x01 record (big-endian lengths). */
function writeRecord(out: Uint8Array, view: DataView, pos: number, r: BinaryRecordParts): number {
  pos = writeField(out, view, pos, r.key, r.keyBytes, false);
  pos = writeField(out, view, pos, r.value, r.valueBytes, false);
  view.setUint16(pos, r.headers.length / 2);
  pos += 2;
  for (let i = 0; i < r.headers.length; i += 2) {
    const nameBytes = writeText(out, pos + 2, r.headers[i]!);
    view.setUint16(pos, nameBytes);
    pos += 2 + nameBytes;
    const valueBytes = writeText(out, pos + 4, r.headers[i + 1]!);
    view.setUint32(pos, valueBytes);
    pos += 4 + valueBytes;
  }
  return pos;
}

/**
 * A record in the stored layout, the `index`-th of its batch: u32 length · u32 offsetDelta
 * (= index) · u32 timestampDelta (0) · the fields as in 0x01, little-endian.
 */
function writeStoredRecord(out: Uint8Array, view: DataView, pos: number, r: BinaryRecordParts, index: number): number {
  const start = pos;
  view.setUint32(pos + 4, index, true);
  view.setUint32(pos + 8, 0, true);
  pos = writeField(out, view, pos + 12, r.key, r.keyBytes, true);
  pos = writeField(out, view, pos, r.value, r.valueBytes, true);
  view.setUint16(pos, r.headers.length / 2, true);
  pos += 2;
  for (let i = 0; i < r.headers.length; i += 2) {
    const nameBytes = writeText(out, pos + 2, r.headers[i]!);
    view.setUint16(pos, nameBytes, true);
    pos += 2 + nameBytes;
    const valueBytes = writeText(out, pos + 4, r.headers[i + 1]!);
    view.setUint32(pos, valueBytes, true);
    pos += 4 + valueBytes;
  }
  view.setUint32(start, pos - start - 4, true);
  return pos;
}

/**
 * A stored batch's header as the client fills it (docs/storage-format.md): magic, length,
 * version, producer id, count and last offset delta; CRC, base offset, timestamps and producer
 * sequence are zero (the server writes them).
 */
function writeBatchHeader(out: Uint8Array, view: DataView, at: number, length: number, count: number, pid: Uint8Array | null): void {
  out.fill(0, at, at + BATCH_HEADER_BYTES);
  view.setUint32(at, BATCH_MAGIC, true);
  view.setUint32(at + 4, length, true);
  out[at + 12] = BATCH_VERSION;
  view.setUint16(at + 14, pid?.length ?? 0, true);
  view.setUint32(at + 24, count, true);
  view.setUint32(at + 28, count - 1, true);
  if (pid !== null) out.set(pid, at + BATCH_HEADER_BYTES);
}

/** A length-prefixed field (i32, -1 = null) of `length` bytes: raw bytes, or text as UTF-8. */
function writeField(out: Uint8Array, view: DataView, pos: number, field: Uint8Array | string | null, length: number, littleEndian: boolean): number {
  if (field === null) {
    view.setInt32(pos, -1, littleEndian);
    return pos + 4;
  }
  view.setInt32(pos, length, littleEndian);
  if (typeof field === 'string') writeText(out, pos + 4, field);
  else out.set(field, pos + 4);
  return pos + 4 + length;
}

/** Writes `text` as UTF-8 at `pos` (the frame was sized with utf8Length, so it fits); returns its length. */
function writeText(out: Uint8Array, pos: number, text: string): number {
  return encoder.encodeInto(text, out.subarray(pos)).written;
}

/**
 * A record of a binary push. Its key, value and headers stay bytes in the frame's buffer until
 * read: `valueBytes` is a view of the frame (no copy), `value` is decoded on first access (JSON
 * when it parses, else the string, as a JSON-mode reader would see it).
 */
class BinaryWireRecord implements WireRecord {
  private decodedKey: string | null | undefined;
  private decodedValue: unknown;
  private valueDecoded = false;

  constructor(
    readonly offset: number,
    readonly timestamp: number,
    private readonly keyBytes: Uint8Array | null,
    readonly valueBytes: Uint8Array | null,
    readonly headers: Readonly<Record<string, string>>,
  ) {}

  get key(): string | null {
    if (this.decodedKey === undefined) this.decodedKey = this.keyBytes === null ? null : decoder.decode(this.keyBytes);
    return this.decodedKey;
  }

  get value(): unknown {
    if (!this.valueDecoded) {
      this.decodedValue = this.valueBytes === null ? null : parseValue(decoder.decode(this.valueBytes));
      this.valueDecoded = true;
    }
    return this.decodedValue;
  }
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON (raw bytes, or text from another source): the string, as JSON-mode readers get it.
    return text;
  }
}

/**
 * The i32-length-prefixed field at `pos` (-1 = null), as a view of `bytes`; `after` more bytes
 * must follow it before `end`.
 */
function lengthPrefixed(bytes: Uint8Array, view: DataView, pos: number, end: number, after: number, littleEndian: boolean, what: string): Uint8Array | null {
  const length = view.getInt32(pos, littleEndian);
  if (length < -1) bad(`bad ${what} length`);
  if (pos + 4 + Math.max(0, length) + after > end) bad(`${what} runs past the end`);
  return length === -1 ? null : bytes.subarray(pos + 4, pos + 4 + length);
}

/**
 * `count` headers (u16 name length · name · u32 value length · value, UTF-8) from `pos`, within
 * `end`; returns them and where they end. Only called for records that have headers.
 */
function readHeaders(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  end: number,
  count: number,
  littleEndian: boolean,
): { headers: Record<string, string>; end: number } {
  const headers: Record<string, string> = {};
  for (let k = 0; k < count; k++) {
    if (pos + 6 > end) bad('truncated header');
    const nameLength = view.getUint16(pos, littleEndian);
    pos += 2;
    if (pos + nameLength + 4 > end) bad('header runs past the end');
    const name = decoder.decode(bytes.subarray(pos, pos + nameLength));
    pos += nameLength;
    const valueLength = view.getUint32(pos, littleEndian);
    pos += 4;
    if (pos + valueLength > end) bad('header runs past the end');
    headers[name] = decoder.decode(bytes.subarray(pos, pos + valueLength));
    pos += valueLength;
  }
  return { headers, end: pos };
}

function bad(what: string): never {
  throw new ProtocolError(`malformed binary frame from the server: ${what}`);
}

/**
 * Decodes a binary push, `records` (0x02) or `stored` (0x04); null for a kind the SDK does not
 * read (a newer server's). Throws ProtocolError for a malformed frame or a stored batch that
 * fails its CRC.
 */
export function decodePushFrame(data: ArrayBuffer | ArrayBufferView): RecordsFrame | null {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return bytes.length > 0 && bytes[0] === BINARY_KIND_STORED ? decodeStoredFrame(bytes) : decodeRecordsFrame(bytes);
}

/** The JSON header of a push: its fields, and where the frame's body starts. */
function pushHeader(bytes: Uint8Array, view: DataView): { h: Record<string, unknown>; pos: number } {
  if (bytes.length < 5) bad('shorter than its envelope');
  const pos = 5 + view.getUint32(1);
  if (pos > bytes.length) bad('header runs past the end');
  let header: unknown;
  try {
    header = JSON.parse(decoder.decode(bytes.subarray(5, pos)));
  } catch (err) {
    throw new ProtocolError('malformed binary frame from the server: header is not JSON', { cause: err });
  }
  if (typeof header !== 'object' || header === null) bad('header is not an object');
  return { h: header as Record<string, unknown>, pos };
}

/**
 * A `stored` push: whole batches as the server stores them, each checked against its CRC-32
 * before a record of it is handed out; records before the header's `from` are dropped. Byte
 * credit is the batches' lengths: each delivered record counts its own bytes, and the first of
 * each batch also the batch header and any records before `from`.
 */
function decodeStoredFrame(bytes: Uint8Array): RecordsFrame {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { h, pos: bodyStart } = pushHeader(bytes, view);
  const sub = h['sub'];
  const partition = h['partition'];
  const from = h['from'];
  const nextOffset = h['next_offset'];
  if (typeof sub !== 'string' || !isCount(partition) || !isCount(from) || !isCount(nextOffset)) bad('header lacks sub, partition, from or next_offset');
  const end = bytes.length;
  const records: WireRecord[] = [];
  const sizes: number[] = [];
  const u64 = (at: number): number => {
    const high = view.getUint32(at + 4, true);
    if (high > MAX_HIGH_WORD) bad('offset or timestamp past 2^53');
    return high * TWO_POW_32 + view.getUint32(at, true);
  };
  for (let pos = bodyStart; pos < end; ) {
    if (pos + BATCH_HEADER_BYTES > end) bad('truncated stored batch');
    if (view.getUint32(pos, true) !== BATCH_MAGIC) bad('stored batch without its magic');
    const length = view.getUint32(pos + 4, true);
    const batchEnd = pos + length;
    if (length < BATCH_HEADER_BYTES || batchEnd > end) bad('stored batch length runs past the frame');
    if (crc32(bytes, pos + 12, batchEnd) !== view.getUint32(pos + 8, true)) {
      throw new ProtocolError(`stored batch at byte ${pos} of a ${sub} push failed its CRC-32 check`);
    }
    if (bytes[pos + 12] !== BATCH_VERSION) bad('unknown stored batch version');
    const base = u64(pos + 16);
    const count = view.getUint32(pos + 24, true);
    const firstTimestamp = u64(pos + 32);
    let p = pos + BATCH_HEADER_BYTES + view.getUint16(pos + 14, true);
    let first = -1;
    let delivered = 0;
    for (let i = 0; i < count; i++) {
      if (p + STORED_RECORD_FIXED_BYTES > batchEnd) bad('truncated stored record');
      const recordEnd = p + 4 + view.getUint32(p, true);
      if (recordEnd > batchEnd) bad('stored record runs past its batch');
      const offset = base + view.getUint32(p + 4, true);
      if (offset < from) {
        p = recordEnd;
        continue;
      }
      const timestamp = firstTimestamp + view.getUint32(p + 8, true);
      let q = p + 12;
      // The key leaves room for the value length and the header count; the value for the count.
      const key = lengthPrefixed(bytes, view, q, recordEnd, 6, true, 'key');
      q += 4 + (key?.length ?? 0);
      const value = lengthPrefixed(bytes, view, q, recordEnd, 2, true, 'value');
      q += 4 + (value?.length ?? 0);
      const headerCount = view.getUint16(q, true);
      q += 2;
      let headers = EMPTY_HEADERS;
      if (headerCount > 0) {
        const read = readHeaders(bytes, view, q, recordEnd, headerCount, true);
        headers = read.headers;
        q = read.end;
      }
      if (q !== recordEnd) bad('stored record length disagrees with its fields');
      if (first < 0) first = records.length;
      records.push(new BinaryWireRecord(offset, timestamp, key, value, headers));
      sizes.push(recordEnd - p);
      delivered += recordEnd - p;
      p = recordEnd;
    }
    if (p !== batchEnd) bad('stored batch holds bytes after its records');
    if (first < 0) bad('stored batch with no record at or after from');
    sizes[first]! += length - delivered;
    pos = batchEnd;
  }
  return { type: 'records', sub, partition, records, nextOffset, recordsBytes: undefined, sizes };
}

/**
 * Decodes a binary `records` push; null for a kind the SDK does not read (a newer server's).
 * Throws ProtocolError for a malformed frame. Each record's `sizes` entry is exactly what the
 * server counted against byte credit.
 */
export function decodeRecordsFrame(data: ArrayBuffer | ArrayBufferView): RecordsFrame | null {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length < FRAME_FIXED_BYTES) bad('shorter than its envelope');
  if (bytes[0] !== BINARY_KIND_RECORDS) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  const { h, pos: bodyStart } = pushHeader(bytes, view);
  let pos = bodyStart;
  if (pos + 4 > end) bad('header runs past the end');
  const sub = h['sub'];
  const partition = h['partition'];
  const nextOffset = h['next_offset'];
  if (typeof sub !== 'string' || !isCount(partition) || !isCount(nextOffset)) bad('header lacks sub, partition or next_offset');
  const count = view.getUint32(pos);
  pos += 4;
  if (count * (POSITION_BYTES + BINARY_RECORD_FIXED_BYTES) > end - pos) bad('record count larger than the frame');
  const records = new Array<WireRecord>(count);
  const sizes = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const start = pos;
    if (pos + POSITION_BYTES + BINARY_RECORD_FIXED_BYTES > end) bad('truncated record');
    const high = view.getUint32(pos);
    const timeHigh = view.getUint32(pos + 8);
    if (high > MAX_HIGH_WORD || timeHigh > MAX_HIGH_WORD) bad('offset or timestamp past 2^53');
    const offset = high * TWO_POW_32 + view.getUint32(pos + 4);
    const timestamp = timeHigh * TWO_POW_32 + view.getUint32(pos + 12);
    pos += POSITION_BYTES;
    const key = lengthPrefixed(bytes, view, pos, end, 6, false, 'key');
    pos += 4 + (key?.length ?? 0);
    const value = lengthPrefixed(bytes, view, pos, end, 2, false, 'value');
    pos += 4 + (value?.length ?? 0);
    const headerCount = view.getUint16(pos);
    pos += 2;
    let headers = EMPTY_HEADERS;
    if (headerCount > 0) {
      const read = readHeaders(bytes, view, pos, end, headerCount, false);
      headers = read.headers;
      pos = read.end;
    }
    records[i] = new BinaryWireRecord(offset, timestamp, key, value, headers);
    sizes[i] = pos - start;
  }
  if (pos !== end) bad('bytes after the last record');
  return { type: 'records', sub, partition, records, nextOffset, recordsBytes: undefined, sizes };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
