import { readFile, writeFile, rename, open, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, checkBatch, lastOffsetOf, type BatchHeader } from './batch-codec.js';
import { SegmentIndex } from './segment-index.js';

/**
 * One segment of a partition: `<base>.log` (batches), `<base>.index` and `<base>.timeindex`.
 * The base offset is zero-padded to 20 digits so a directory listing sorts in log order.
 */
export class Segment {
  /** Bytes of the log file that are written and readable. */
  size: number;
  /** Offset after the last record in this segment; `baseOffset` when empty. */
  nextOffset: number;
  /** Largest record timestamp in the segment, -1 when unknown or empty. */
  maxTimestamp: number;
  /** Timestamp of the first record, -1 when unknown or empty (drives time-based rolling). */
  firstTimestamp: number;
  /** Bumped when compaction replaces the file, so reads that raced the swap retry. */
  version = 0;
  /** The active segment's in-memory index; null for sealed segments (see IndexCache). */
  index: SegmentIndex | null;

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
    init: { size: number; nextOffset: number; maxTimestamp: number; firstTimestamp: number; index: SegmentIndex | null },
  ) {
    this.size = init.size;
    this.nextOffset = init.nextOffset;
    this.maxTimestamp = init.maxTimestamp;
    this.firstTimestamp = init.firstTimestamp;
    this.index = init.index;
  }

  static fileBase(baseOffset: number): string {
    return String(baseOffset).padStart(20, '0');
  }

  get name(): string {
    return Segment.fileBase(this.baseOffset);
  }

  get logPath(): string {
    return join(this.dir, `${this.name}.log`);
  }

  get indexPath(): string {
    return join(this.dir, `${this.name}.index`);
  }

  get timeIndexPath(): string {
    return join(this.dir, `${this.name}.timeindex`);
  }

  /** Writes both index files atomically (temp file + rename); they are hints, so no fsync. */
  async writeIndex(segmentIndex: SegmentIndex): Promise<void> {
    const { index, timeIndex } = segmentIndex.serialize();
    await writeFile(`${this.indexPath}.tmp`, index);
    await writeFile(`${this.timeIndexPath}.tmp`, timeIndex);
    await rename(`${this.indexPath}.tmp`, this.indexPath);
    await rename(`${this.timeIndexPath}.tmp`, this.timeIndexPath);
  }

  /** Loads index files written at seal time; null when missing or inconsistent. */
  async loadIndex(): Promise<SegmentIndex | null> {
    try {
      const [index, timeIndex] = await Promise.all([readFile(this.indexPath), readFile(this.timeIndexPath)]);
      return SegmentIndex.deserialize(index, timeIndex, this.size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }
}

export interface ScannedBatch {
  readonly position: number;
  readonly header: BatchHeader;
}

export interface CorruptRegion {
  readonly position: number;
  readonly endPosition: number;
  readonly detail: string;
}

export type ScanEvent =
  | { readonly type: 'batch'; readonly batch: ScannedBatch }
  | { readonly type: 'corrupt'; readonly region: CorruptRegion }
  | { readonly type: 'torn'; readonly position: number; readonly detail: string };

const SCAN_CHUNK = 4 * 1024 * 1024;

/** Reads `length` bytes at `position`, fewer only at end of file. */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

/**
 * Walks the batches of a log file from `start` to `end`, validating each CRC. A bad batch that is
 * followed by a valid one is reported as a corrupt region (the log continues after it); a bad
 * batch with nothing valid after it is a torn tail. `minOffset` is the smallest base offset a
 * following batch may have, so a stale batch found while resynchronising is not mistaken for
 * the continuation.
 */
export async function* scanBatches(
  handle: FileHandle,
  start: number,
  end: number,
  minOffset: number,
  maxBatchBytes: number,
): AsyncGenerator<ScanEvent> {
  let chunkStart = start;
  let chunk: Buffer = Buffer.alloc(0);
  let pos = start;
  let expected = minOffset;
  while (pos < end) {
    let rel = pos - chunkStart;
    if (rel + BATCH_HEADER_BYTES > chunk.length || rel >= chunk.length) {
      chunkStart = pos;
      chunk = await readAt(handle, pos, Math.min(SCAN_CHUNK, end - pos));
      rel = 0;
    }
    let check = checkBatch(chunk, rel, true, maxBatchBytes);
    if (!check.ok && check.reason === 'incomplete' && chunk.length - rel >= 8 && chunkStart + chunk.length < end) {
      // The batch straddles the chunk boundary: re-read starting at it, large enough to hold it.
      const wanted = Math.min(Math.max(chunk.readUInt32LE(rel + 4), SCAN_CHUNK), end - pos);
      chunkStart = pos;
      chunk = await readAt(handle, pos, wanted);
      rel = 0;
      check = checkBatch(chunk, rel, true, maxBatchBytes);
    }
    if (check.ok && check.header.baseOffset >= expected && check.header.count > 0) {
      yield { type: 'batch', batch: { position: pos, header: check.header } };
      expected = lastOffsetOf(check.header) + 1;
      pos += check.header.length;
      continue;
    }
    const detail = check.ok ? `unexpected base offset ${check.header.baseOffset} (expected >= ${expected})` : check.detail;
    const next = await findNextBatch(handle, pos + 1, end, expected, maxBatchBytes);
    if (next === null) {
      yield { type: 'torn', position: pos, detail };
      return;
    }
    yield { type: 'corrupt', region: { position: pos, endPosition: next, detail } };
    pos = next;
    chunk = Buffer.alloc(0) as Buffer;
  }
}

/** Searches forward for the next position holding a valid batch with base offset >= minOffset. */
export async function findNextBatch(
  handle: FileHandle,
  from: number,
  end: number,
  minOffset: number,
  maxBatchBytes: number,
): Promise<number | null> {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(BATCH_MAGIC, 0);
  let pos = from;
  while (pos < end) {
    const window = await readAt(handle, pos, Math.min(SCAN_CHUNK, end - pos));
    let at = window.indexOf(magic);
    while (at >= 0) {
      const candidate = pos + at;
      const head = await readAt(handle, candidate, Math.min(BATCH_HEADER_BYTES, end - candidate));
      if (head.length === BATCH_HEADER_BYTES) {
        const length = head.readUInt32LE(4);
        if (length >= BATCH_HEADER_BYTES && length <= maxBatchBytes && candidate + length <= end) {
          const whole = await readAt(handle, candidate, length);
          const check = checkBatch(whole, 0, true, maxBatchBytes);
          if (check.ok && check.header.baseOffset >= minOffset && check.header.count > 0) return candidate;
        }
      }
      at = window.indexOf(magic, at + 1);
    }
    if (window.length < 4) break;
    pos += window.length - 3; // overlap so a magic split across windows is still found
  }
  return null;
}

/**
 * Opens (creating if needed) a segment's log file for writing at explicit positions (no O_APPEND,
 * which would ignore them). With `dataSync`, the file is opened O_DSYNC: each write returns only
 * once its data (and the metadata needed to read it back) is on disk, so a durable append is one
 * call on the thread pool instead of a write and an fdatasync.
 */
export async function openForWrite(path: string, dataSync: boolean): Promise<FileHandle> {
  const { O_RDWR, O_CREAT, O_DSYNC } = fsConstants;
  return open(path, O_RDWR | O_CREAT | (dataSync ? O_DSYNC : 0));
}
