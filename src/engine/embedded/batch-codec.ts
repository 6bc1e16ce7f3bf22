import { crc32 } from 'node:zlib';
import { recordSize } from '../record-size.js';
import type { ProduceRecord, RecordHeaders, StoredBatchInfo, StoredRecord } from '../types.js';

/**
 * The on-disk (and in-cache) record batch. Little-endian throughout; see docs/storage-format.md.
 *
 *  0 ┌──────────────┬──────────────┬──────────────┬────┬────┬──────────┐
 *    │ magic u32    │ length u32   │ crc32 u32    │ver │attr│ pidLen u16│
 * 16 ├──────────────┴──────────────┼──────────────┼──────────────┴──────────┘
 *    │ baseOffset u64              │ count u32    │ lastOffsetDelta u32
 * 32 ├─────────────────────────────┼─────────────────────────────┐
 *    │ firstTimestamp u64          │ maxTimestamp u64            │
 * 48 ├─────────────────────────────┼─────────────────────────────┘
 *    │ producerSequence u64        │ producerId (pidLen bytes, UTF-8) │ records…
 *
 * `length` covers the whole batch, header included; the CRC covers bytes [12, length), so a
 * torn write, a flipped bit or a wrong length all fail it. Each record:
 *
 *    u32 recordLength (bytes after this field) · u32 offsetDelta · u32 timestampDelta
 *    i32 keyLength (-1 = null) · key · i32 valueLength (-1 = null) · value
 *    u16 headerCount · { u16 nameLength · name · u32 valueLength · value }*
 *
 * Fixed-width integers rather than varints: they cost a few bytes per record and make encoding
 * and decoding in JavaScript several times faster.
 */

export const BATCH_MAGIC = 0x4b4f5242; // "BROK" read as little-endian bytes
export const BATCH_VERSION = 1;
export const BATCH_HEADER_BYTES = 56;
const RECORD_FIXED_BYTES = 4 + 4 + 4 + 4 + 4 + 2; // = the overhead in ../record-size.ts
/** Name length (u16) and value length (u32) of one record header. */
const HEADER_FIXED_BYTES = 6;
const MAX_PRODUCER_ID_BYTES = 64;
const TWO_POW_32 = 2 ** 32;

export interface BatchHeader {
  readonly length: number;
  readonly crc: number;
  readonly baseOffset: number;
  readonly count: number;
  readonly lastOffsetDelta: number;
  readonly firstTimestamp: number;
  readonly maxTimestamp: number;
  readonly producerId: string | null;
  readonly producerSequence: number;
}

/** A record to encode with its position inside the batch (compaction leaves gaps). */
export interface EncodableRecord extends ProduceRecord {
  readonly offsetDelta?: number;
  readonly timestampDelta?: number;
}

export interface EncodeBatchInput {
  readonly baseOffset: number;
  readonly timestamp: number;
  readonly records: readonly EncodableRecord[];
  readonly producerId?: string | null;
  readonly producerSequence?: number;
}

const EMPTY_HEADERS: RecordHeaders = Object.freeze({});

function writeU64(buf: Buffer, pos: number, value: number): void {
  buf.writeUInt32LE(value % TWO_POW_32, pos);
  buf.writeUInt32LE(Math.floor(value / TWO_POW_32), pos + 4);
}

function readU64(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos) + buf.readUInt32LE(pos + 4) * TWO_POW_32;
}

/** Bytes a record takes inside a batch; also what size limits are checked against. */
export const encodedRecordSize = recordSize;

export function encodeBatch(input: EncodeBatchInput): Buffer {
  const { records } = input;
  const producerId = input.producerId ?? null;
  const pidBytes = producerId === null ? 0 : Buffer.byteLength(producerId);
  if (pidBytes > MAX_PRODUCER_ID_BYTES) throw new RangeError(`producer id longer than ${MAX_PRODUCER_ID_BYTES} bytes`);

  let length = BATCH_HEADER_BYTES + pidBytes;
  for (let i = 0; i < records.length; i++) length += encodedRecordSize(records[i]!);

  const buf = Buffer.allocUnsafe(length);
  let pos = BATCH_HEADER_BYTES;
  if (producerId !== null) pos += buf.write(producerId, pos, 'utf8');

  let lastOffsetDelta = 0;
  let maxTimestampDelta = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const offsetDelta = record.offsetDelta ?? i;
    const timestampDelta = record.timestampDelta ?? 0;
    if (offsetDelta > lastOffsetDelta) lastOffsetDelta = offsetDelta;
    if (timestampDelta > maxTimestampDelta) maxTimestampDelta = timestampDelta;
    const start = pos;
    pos += 4;
    buf.writeUInt32LE(offsetDelta, pos);
    buf.writeUInt32LE(timestampDelta, pos + 4);
    pos += 8;
    pos = writeBytes(buf, pos, record.key ?? null);
    pos = writeBytes(buf, pos, record.value);
    const headers = record.headers;
    let headerCount = 0;
    const countPos = pos;
    pos += 2;
    if (headers) {
      for (const name in headers) {
        const nameLength = buf.write(name, pos + 2, 'utf8');
        buf.writeUInt16LE(nameLength, pos);
        pos += 2 + nameLength;
        const valueLength = buf.write(headers[name]!, pos + 4, 'utf8');
        buf.writeUInt32LE(valueLength, pos);
        pos += 4 + valueLength;
        headerCount++;
      }
    }
    buf.writeUInt16LE(headerCount, countPos);
    buf.writeUInt32LE(pos - start - 4, start);
  }

  buf.writeUInt32LE(BATCH_MAGIC, 0);
  buf.writeUInt32LE(length, 4);
  buf.writeUInt8(BATCH_VERSION, 12);
  buf.writeUInt8(0, 13);
  buf.writeUInt16LE(pidBytes, 14);
  writeU64(buf, 16, input.baseOffset);
  buf.writeUInt32LE(records.length, 24);
  buf.writeUInt32LE(lastOffsetDelta, 28);
  writeU64(buf, 32, input.timestamp);
  writeU64(buf, 40, input.timestamp + maxTimestampDelta);
  writeU64(buf, 48, input.producerSequence ?? 0);
  buf.writeUInt32LE(crc32(buf.subarray(12, length)), 8);
  return buf;
}

function writeBytes(buf: Buffer, pos: number, bytes: Uint8Array | null): number {
  if (bytes === null) {
    buf.writeInt32LE(-1, pos);
    return pos + 4;
  }
  buf.writeInt32LE(bytes.length, pos);
  buf.set(bytes, pos + 4);
  return pos + 4 + bytes.length;
}

export type HeaderCheck =
  | { readonly ok: true; readonly header: BatchHeader }
  | { readonly ok: false; readonly reason: 'incomplete' | 'corrupt'; readonly detail: string };

/**
 * Validates the batch starting at `pos` in `buf`: magic, version, a plausible length that fits
 * inside `buf`, and (unless `verifyCrc` is false) the CRC. `incomplete` means the buffer ends
 * before the batch does — a torn tail on disk, or a read that must fetch more bytes.
 */
export function checkBatch(buf: Buffer, pos: number, verifyCrc = true, maxBatchBytes = 2 ** 31): HeaderCheck {
  const available = buf.length - pos;
  if (available < BATCH_HEADER_BYTES) return { ok: false, reason: 'incomplete', detail: 'truncated batch header' };
  if (buf.readUInt32LE(pos) !== BATCH_MAGIC) return { ok: false, reason: 'corrupt', detail: 'bad magic' };
  const length = buf.readUInt32LE(pos + 4);
  const pidLength = buf.readUInt16LE(pos + 14);
  if (buf.readUInt8(pos + 12) !== BATCH_VERSION) return { ok: false, reason: 'corrupt', detail: 'unknown batch version' };
  if (length < BATCH_HEADER_BYTES + pidLength || length > maxBatchBytes || pidLength > MAX_PRODUCER_ID_BYTES) {
    return { ok: false, reason: 'corrupt', detail: `implausible batch length ${length}` };
  }
  if (length > available) return { ok: false, reason: 'incomplete', detail: `batch of ${length} bytes, ${available} present` };
  const crc = buf.readUInt32LE(pos + 8);
  if (verifyCrc && crc32(buf.subarray(pos + 12, pos + length)) !== crc) {
    return { ok: false, reason: 'corrupt', detail: 'CRC mismatch' };
  }
  return {
    ok: true,
    header: {
      length,
      crc,
      baseOffset: readU64(buf, pos + 16),
      count: buf.readUInt32LE(pos + 24),
      lastOffsetDelta: buf.readUInt32LE(pos + 28),
      firstTimestamp: readU64(buf, pos + 32),
      maxTimestamp: readU64(buf, pos + 40),
      producerSequence: readU64(buf, pos + 48),
      producerId: pidLength === 0 ? null : buf.toString('utf8', pos + BATCH_HEADER_BYTES, pos + BATCH_HEADER_BYTES + pidLength),
    },
  };
}

/** Thrown by decodeRecords when a batch that passed its CRC is still malformed inside. */
export class MalformedBatchError extends Error {
  override readonly name = 'MalformedBatchError';
}

/**
 * Decodes the records of a validated batch, keeping those with offset >= `fromOffset`, appending
 * to `out` until it holds `maxRecords` or `maxBytes` of records were taken (at least one). Keys and values are views into `buf` (no copies).
 * Returns the number of bytes of record data consumed into `out`.
 */
export function decodeRecords(
  buf: Buffer,
  pos: number,
  header: BatchHeader,
  fromOffset: number,
  out: StoredRecord[],
  maxRecords: number,
  maxBytes = Number.MAX_SAFE_INTEGER,
): number {
  const end = pos + header.length;
  let p = pos + BATCH_HEADER_BYTES + (header.producerId === null ? 0 : Buffer.byteLength(header.producerId));
  let bytes = 0;
  for (let i = 0; i < header.count && out.length < maxRecords && bytes < maxBytes; i++) {
    if (p + RECORD_FIXED_BYTES > end) throw new MalformedBatchError('record runs past the batch end');
    const recordLength = buf.readUInt32LE(p);
    const recordEnd = p + 4 + recordLength;
    if (recordEnd > end) throw new MalformedBatchError('record runs past the batch end');
    const offset = header.baseOffset + buf.readUInt32LE(p + 4);
    if (offset < fromOffset) {
      p = recordEnd;
      continue;
    }
    const timestamp = header.firstTimestamp + buf.readUInt32LE(p + 8);
    let q = p + 12;
    const keyLength = buf.readInt32LE(q);
    q += 4;
    if (keyLength < -1 || q + keyLength + 6 > recordEnd) throw new MalformedBatchError('bad key length');
    const key = keyLength < 0 ? null : buf.subarray(q, q + keyLength);
    if (keyLength > 0) q += keyLength;
    const valueLength = buf.readInt32LE(q);
    q += 4;
    if (valueLength < -1 || q + valueLength + 2 > recordEnd) throw new MalformedBatchError('bad value length');
    const value = valueLength < 0 ? null : buf.subarray(q, q + valueLength);
    if (valueLength > 0) q += valueLength;
    const headerCount = buf.readUInt16LE(q);
    q += 2;
    let headers = EMPTY_HEADERS;
    if (headerCount > 0) {
      const h: Record<string, string> = {};
      for (let j = 0; j < headerCount; j++) {
        const nameLength = buf.readUInt16LE(q);
        if (q + 2 + nameLength + 4 > recordEnd) throw new MalformedBatchError('bad header name length');
        const name = buf.toString('utf8', q + 2, q + 2 + nameLength);
        q += 2 + nameLength;
        const valueLen = buf.readUInt32LE(q);
        if (q + 4 + valueLen > recordEnd) throw new MalformedBatchError('bad header value length');
        h[name] = buf.toString('utf8', q + 4, q + 4 + valueLen);
        q += 4 + valueLen;
      }
      headers = h;
    }
    if (q !== recordEnd) throw new MalformedBatchError('record length disagrees with its fields');
    out.push({ offset, timestamp, key, value, headers });
    bytes += recordLength + 4;
    p = recordEnd;
  }
  return bytes;
}

/**
 * Collects whole stored batches for a `readStored` from `from`, within hard limits on the records
 * at or after `from` and on the batches' total length — except, with `firstAlways`, the first
 * batch that delivers a record, which is taken whatever it holds (its reader sends part of it).
 * Counts what each batch delivers by walking its records' lengths, without decoding them.
 */
export class StoredBatchCollector {
  readonly batches: Uint8Array[] = [];
  readonly batchRecords: number[] = [];
  readonly batchRecordBytes: number[] = [];
  readonly batchEnds: number[] = [];
  records = 0;
  bytes = 0;
  recordBytes = 0;
  /** What the first batch needed when it did not fit; null otherwise. */
  blocked: { records: number; bytes: number } | null = null;
  /** No further batch is taken (the limits are reached, or one did not fit). */
  full = false;

  constructor(
    readonly from: number,
    private readonly maxRecords: number,
    private readonly maxBytes: number,
    private readonly firstAlways = false,
  ) {}

  /** What has been taken so far, to roll back to (a read that must start over). */
  mark(): { batches: number; records: number; bytes: number; recordBytes: number } {
    return { batches: this.batches.length, records: this.records, bytes: this.bytes, recordBytes: this.recordBytes };
  }

  /** Forgets everything taken after `mark`. */
  rollback(mark: ReturnType<StoredBatchCollector['mark']>): void {
    for (const list of [this.batches, this.batchRecords, this.batchRecordBytes, this.batchEnds]) list.length = mark.batches;
    this.records = mark.records;
    this.bytes = mark.bytes;
    this.recordBytes = mark.recordBytes;
    this.full = false;
    this.blocked = null;
  }

  /** Record credit left under the limit. */
  get recordsLeft(): number {
    return this.maxRecords - this.records;
  }

  /** Bytes left under the limit. */
  get bytesLeft(): number {
    return this.maxBytes - this.bytes;
  }

  /**
   * Takes the validated batch at `pos` of `buf` if it fits, or passes over one that delivers no
   * record at or after `from`: true either way. False when it does not fit (the collector is
   * then full). Throws MalformedBatchError for records that run past the batch.
   */
  offer(buf: Buffer, pos: number, header: BatchHeader): boolean {
    const end = pos + header.length;
    let p = pos + BATCH_HEADER_BYTES + (header.producerId === null ? 0 : Buffer.byteLength(header.producerId));
    let records = 0;
    let recordBytes = 0;
    for (let i = 0; i < header.count; i++) {
      if (p + RECORD_FIXED_BYTES > end) throw new MalformedBatchError('record runs past the batch end');
      const recordEnd = p + 4 + buf.readUInt32LE(p);
      if (recordEnd > end) throw new MalformedBatchError('record runs past the batch end');
      if (header.baseOffset + buf.readUInt32LE(p + 4) >= this.from) {
        records++;
        // The record less its fixed fields and each header's two lengths: key + value + header text.
        recordBytes += recordEnd - p - RECORD_FIXED_BYTES - HEADER_FIXED_BYTES * this.headerCount(buf, p, recordEnd);
      }
      p = recordEnd;
    }
    if (records === 0) return true;
    const fits = this.records + records <= this.maxRecords && this.bytes + header.length <= this.maxBytes;
    if (!fits && !(this.firstAlways && this.batches.length === 0)) {
      if (this.batches.length === 0) this.blocked = { records, bytes: header.length };
      this.full = true;
      return false;
    }
    this.batches.push(buf.subarray(pos, end));
    this.batchRecords.push(records);
    this.batchRecordBytes.push(recordBytes);
    this.batchEnds.push(lastOffsetOf(header) + 1);
    this.records += records;
    this.bytes += header.length;
    this.recordBytes += recordBytes;
    if (this.records >= this.maxRecords || this.bytes >= this.maxBytes) this.full = true;
    return true;
  }

  /** The header count of the record at `p` (its last fixed field, after key and value). */
  private headerCount(buf: Buffer, p: number, recordEnd: number): number {
    let q = p + 12;
    const keyLength = buf.readInt32LE(q);
    q += 4 + Math.max(0, keyLength);
    if (q + 4 > recordEnd) throw new MalformedBatchError('bad key length');
    const valueLength = buf.readInt32LE(q);
    q += 4 + Math.max(0, valueLength);
    if (q + 2 > recordEnd) throw new MalformedBatchError('bad value length');
    return buf.readUInt16LE(q);
  }
}

/** Offset of the last record in the batch (next offset after it is this + 1). */
export function lastOffsetOf(header: BatchHeader): number {
  return header.baseOffset + header.lastOffsetDelta;
}

/** Thrown by {@link checkClientBatch}: the batch is malformed (the session answers INVALID_FRAME). */
export class ClientBatchError extends Error {
  override readonly name = 'ClientBatchError';
}

/**
 * Checks a batch a client built in the stored layout (docs/protocol.md, "Stored produce"), all of
 * `buf`, before anything of it is trusted: magic, version, length = the buffer, no attributes,
 * the producer id, a count of 1 or more with lastOffsetDelta = count − 1, and every record —
 * its length inside the batch, offsetDelta = its index, timestampDelta 0, key, value and header
 * lengths that add up to the record exactly, header names and values that are UTF-8, no header
 * named twice — and nothing after the last record. The fields the log assigns (CRC, base offset,
 * timestamps, producer sequence) are not read: {@link sealBatch} writes them.
 */
export function checkClientBatch(buf: Buffer): StoredBatchInfo {
  const end = buf.length;
  if (end < BATCH_HEADER_BYTES) throw new ClientBatchError(`a batch of ${end} bytes is shorter than its ${BATCH_HEADER_BYTES}-byte header`);
  if (buf.readUInt32LE(0) !== BATCH_MAGIC) throw new ClientBatchError('the batch does not start with the batch magic');
  if (buf.readUInt32LE(4) !== end) throw new ClientBatchError(`batch length ${buf.readUInt32LE(4)} is not the ${end} bytes the frame holds`);
  if (buf[12] !== BATCH_VERSION) throw new ClientBatchError(`batch version ${buf[12]!} is not ${BATCH_VERSION}`);
  if (buf[13] !== 0) throw new ClientBatchError('batch attributes must be 0');
  const pidLength = buf.readUInt16LE(14);
  if (pidLength > MAX_PRODUCER_ID_BYTES || BATCH_HEADER_BYTES + pidLength > end) throw new ClientBatchError(`bad producer id length ${pidLength}`);
  const producerId = pidLength === 0 ? null : strictUtf8(buf, BATCH_HEADER_BYTES, pidLength, 'the producer id');
  const count = buf.readUInt32LE(24);
  if (count === 0) throw new ClientBatchError('a batch needs at least one record');
  if (buf.readUInt32LE(28) !== count - 1) throw new ClientBatchError(`lastOffsetDelta ${buf.readUInt32LE(28)} is not count − 1 (${count - 1})`);
  if (count * RECORD_FIXED_BYTES > end) throw new ClientBatchError(`${count} records do not fit in a batch of ${end} bytes`);
  let p = BATCH_HEADER_BYTES + pidLength;
  let recordBytes = 0;
  let payloadBytes = 0;
  let largestRecord = 0;
  for (let i = 0; i < count; i++) {
    if (p + RECORD_FIXED_BYTES > end) throw new ClientBatchError(`record ${i} runs past the batch end`);
    const recordEnd = p + 4 + buf.readUInt32LE(p);
    if (recordEnd > end) throw new ClientBatchError(`record ${i}: its length runs past the batch end`);
    if (buf.readUInt32LE(p + 4) !== i) throw new ClientBatchError(`record ${i}: offsetDelta ${buf.readUInt32LE(p + 4)} is not its index`);
    if (buf.readUInt32LE(p + 8) !== 0) throw new ClientBatchError(`record ${i}: timestampDelta must be 0 (the log stamps the batch)`);
    let q = p + 12;
    const keyLength = buf.readInt32LE(q);
    q += 4;
    if (keyLength < -1 || q + Math.max(0, keyLength) + 6 > recordEnd) throw new ClientBatchError(`record ${i}: bad key length ${keyLength}`);
    if (keyLength > 0) q += keyLength;
    const valueLength = buf.readInt32LE(q);
    q += 4;
    if (valueLength < -1 || q + Math.max(0, valueLength) + 2 > recordEnd) throw new ClientBatchError(`record ${i}: bad value length ${valueLength}`);
    if (valueLength > 0) q += valueLength;
    payloadBytes += Math.max(0, keyLength) + Math.max(0, valueLength);
    const headerCount = buf.readUInt16LE(q);
    q += 2;
    let names: Set<string> | null = null;
    for (let h = 0; h < headerCount; h++) {
      if (q + 2 > recordEnd) throw new ClientBatchError(`record ${i}: header ${h} runs past the record`);
      const nameLength = buf.readUInt16LE(q);
      if (q + 2 + nameLength + 4 > recordEnd) throw new ClientBatchError(`record ${i}: header ${h} name runs past the record`);
      const name = strictUtf8(buf, q + 2, nameLength, `record ${i}: header ${h} name`);
      q += 2 + nameLength;
      const headerValueLength = buf.readUInt32LE(q);
      if (q + 4 + headerValueLength > recordEnd) throw new ClientBatchError(`record ${i}: header ${JSON.stringify(name)} value runs past the record`);
      strictUtf8(buf, q + 4, headerValueLength, `record ${i}: header ${JSON.stringify(name)} value`);
      q += 4 + headerValueLength;
      payloadBytes += nameLength + headerValueLength;
      names ??= new Set();
      if (names.has(name)) throw new ClientBatchError(`record ${i}: header ${JSON.stringify(name)} appears twice`);
      names.add(name);
    }
    if (q !== recordEnd) throw new ClientBatchError(`record ${i}: ${recordEnd - q} bytes after its last field`);
    const size = recordEnd - p; // = encodedRecordSize: the length field plus what it counts
    recordBytes += size;
    if (size > largestRecord) largestRecord = size;
    p = recordEnd;
  }
  if (p !== end) throw new ClientBatchError(`${end - p} bytes after the last of ${count} records`);
  return { count, producerId, payloadBytes, recordBytes, largestRecord };
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

function strictUtf8(buf: Buffer, pos: number, length: number, what: string): string {
  try {
    return fatalUtf8.decode(buf.subarray(pos, pos + length));
  } catch {
    throw new ClientBatchError(`${what} is not UTF-8`);
  }
}

/**
 * Writes what the log assigns into a batch {@link checkClientBatch} accepted — base offset,
 * timestamps (every record's delta is 0), producer sequence — and then its CRC, in place: the
 * client's bytes become the stored batch without a copy.
 */
export function sealBatch(buf: Buffer, baseOffset: number, timestamp: number, producerSequence: number): Buffer {
  writeU64(buf, 16, baseOffset);
  writeU64(buf, 32, timestamp);
  writeU64(buf, 40, timestamp);
  writeU64(buf, 48, producerSequence);
  buf.writeUInt32LE(crc32(buf.subarray(12)), 8);
  return buf;
}
