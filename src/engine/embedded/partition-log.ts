import { mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  CorruptRecordError,
  EngineClosedError,
  InvalidArgumentError,
  MessageTooLargeError,
  OffsetOutOfRangeError,
  PartitionBusyError,
  StorageError,
  TooManyWaitersError,
} from '../errors.js';
import type {
  AppendResult,
  PartitionDescription,
  ProduceRecord,
  ProducerIdentity,
  ReadResult,
  StoredBatchInfo,
  StoredBatchRead,
  StoredRecord,
  TopicConfig,
  WaitOptions,
} from '../types.js';
import {
  checkBatch,
  decodeRecords,
  encodeBatch,
  encodedRecordSize,
  lastOffsetOf,
  MalformedBatchError,
  sealBatch,
  StoredBatchCollector,
  type BatchHeader,
  type EncodableRecord,
} from './batch-codec.js';
import type { FdCache } from './fd-cache.js';
import type { IndexCache } from './index-cache.js';
import { ProducerState, type ProducerSnapshot } from './producer-state.js';
import { findNextBatch, openForWrite, readAt, scanBatches, Segment } from './segment.js';
import { SegmentIndex } from './segment-index.js';
import { TailCache, type TailCacheBudget } from './tail-cache.js';
import { deferred, type Deferred } from '../../lib/deferred.js';

export interface PartitionLogOptions {
  readonly dir: string;
  readonly topic: string;
  readonly partition: number;
  readonly config: TopicConfig;
  readonly fdCache: FdCache;
  readonly indexCache: IndexCache;
  readonly tailBudget: TailCacheBudget;
  readonly logger: Logger;
  readonly now: () => number;
  /** Bytes of log between two sparse index entries. */
  readonly indexIntervalBytes: number;
  readonly maxBatchBytes: number;
  readonly maxWaiters: number;
  /** Bytes of appends queued for the disk; past it appends are refused with PartitionBusyError. */
  readonly maxPendingBytes: number;
  readonly maxProducers: number;
  readonly batchesPerProducer: number;
  /** Most keys held in memory by one compaction pass; past it the pass is skipped and logged. */
  readonly maxCompactionKeys: number;
  /** Told how long every fsync of an append group took (metrics). */
  readonly onFsync: ((seconds: number) => void) | undefined;
}

interface PendingBatch {
  readonly buf: Buffer;
  readonly baseOffset: number;
  readonly count: number;
  readonly timestamp: number;
  readonly producer: ProducerIdentity | undefined;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: Error) => void;
}

/** A group of batches on its way to the disk. */
interface GroupWrite {
  readonly group: PendingBatch[];
  readonly bytes: number;
  /** Its position in the active segment. */
  readonly position: number;
  /** Settles (never rejects) when the write is over; `error` tells how. */
  done: Promise<void>;
  settled: boolean;
  error: Error | null;
}

interface Waiter {
  readonly offset: number;
  readonly resolve: (ready: boolean) => void;
  timer: NodeJS.Timeout | undefined;
  cleanup: (() => void) | undefined;
}

/** Written on clean close; its presence on open means the active segment needs no scan. */
interface CleanMarker {
  readonly segment: number;
  readonly size: number;
  readonly nextOffset: number;
  readonly maxTimestamp: number;
  readonly firstTimestamp: number;
}

const CLEAN_MARKER = 'clean-shutdown.json';
const PRODUCER_SNAPSHOT = 'producers.json';
const MAX_FLUSH_BATCHES = 512; // below IOV_MAX (1024) so one writev takes a whole group
const MAX_FLUSH_BYTES = 32 * 1024 * 1024;
/** Groups written per turn of the flush loop before it lets queued exclusive work (retention, compaction) run. */
const MAX_GROUPS_PER_TURN = 8;
/**
 * Groups on their way to the disk at once, per partition. Two overlapping O_DSYNC writes of
 * 1 MiB moved 1.2–3× the bytes of one at a time on this machine's disk; a third took a 1 KB
 * publisher on one partition another 9–15% (a fourth did not add to it).
 */
const MAX_WRITES_IN_FLIGHT = 3;
/** Another group starts while one is in flight only when this much waits (else it gathers). */
const PIPELINE_MIN_BYTES = 256 * 1024;
/**
 * How far ahead of its data the active segment of an fsync topic is extended (sparse, with
 * ftruncate). An append that grows the file must also commit the new size to the journal on
 * every sync; inside the allocated length only the data (and, once per filesystem block, its
 * block allocation) has to reach the disk. Holes take no space; the tail is cut back when the
 * segment is sealed or closed, and recovery drops it as a torn tail after a crash.
 */
const PREALLOCATE_BYTES = 8 * 1024 * 1024;
const READ_CHUNK_MIN = 64 * 1024;

/**
 * One partition of one topic: an ordered list of segments, the last of which is active.
 *
 * Appends are encoded and given offsets synchronously, queued, and written by a single flush
 * loop that hands the queued batches to one `writev` per group (group commit) — for fsync topics
 * through an O_DSYNC handle, so the write returns once the group is on disk — then acknowledges
 * them together. Readers only ever see what has been written and synced: the high watermark
 * moves after it, in file order, so nothing a consumer saw can vanish in a crash.
 */
export class PartitionLog {
  private segments: Segment[] = [];
  private activeHandle: FileHandle | null = null;
  /** Length of the active segment's file: its data (`size`) plus any preallocated sparse tail. */
  private activeFileBytes = 0;
  /** Groups being written, in file order; published (acknowledged) in that order. */
  private readonly writes: GroupWrite[] = [];
  /** Where the next group is written: the active segment's `size` plus the groups in flight. */
  private writeEnd = 0;
  /**
   * What the flush loop waits on with a write in flight: resolved when a write settles, or when
   * enough is queued to start another write (one promise per wait, not one per append).
   */
  private flushWake: Deferred<void> | null = null;
  private nextOffset = 0;
  private hw = 0;
  private lastTimestamp = 0;
  private pending: PendingBatch[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | null = null;
  private exclusive: Promise<unknown> = Promise.resolve();
  private readonly waiters = new Set<Waiter>();
  private readonly producers: ProducerState;
  private readonly tail: TailCache;
  private failure: Error | null = null;
  private closed = false;
  /** Position of the last batch written to the active segment (its final index entry at seal). */
  private lastBatch: { position: number; relOffset: number; maxTimestamp: number } | null = null;
  private forceIndexEntry = false;
  /** Moving average of bytes per record on disk (batch overhead included), for read sizing. */
  private avgStoredRecordBytes = 256;

  private constructor(private readonly opts: PartitionLogOptions) {
    this.producers = new ProducerState(opts.maxProducers, opts.batchesPerProducer);
    this.tail = new TailCache(opts.tailBudget);
  }

  static async open(opts: PartitionLogOptions): Promise<PartitionLog> {
    const log = new PartitionLog(opts);
    await log.recover();
    return log;
  }

  get config(): TopicConfig {
    return this.opts.config;
  }

  get lowWatermark(): number {
    return this.segments[0]!.baseOffset;
  }

  get highWatermark(): number {
    return this.hw;
  }

  describe(): PartitionDescription {
    return { partition: this.opts.partition, lowWatermark: this.lowWatermark, highWatermark: this.hw };
  }

  /** Total bytes of log on disk. */
  get sizeBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.size;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  // ── append ────────────────────────────────────────────────────────────────────────────────

  append(records: readonly ProduceRecord[], producer?: ProducerIdentity): Promise<AppendResult> {
    if (records.length === 0) return Promise.reject(new InvalidArgumentError('a batch needs at least one record'));
    let total = 0;
    let largest = 0;
    for (let i = 0; i < records.length; i++) {
      const size = encodedRecordSize(records[i]!);
      total += size;
      if (size > largest) largest = size;
    }
    return this.enqueue(records.length, total, largest, producer, (baseOffset, timestamp) =>
      encodeBatch({ baseOffset, timestamp, records, producerId: producer?.id ?? null, producerSequence: producer?.sequence ?? 0 }),
    );
  }

  /**
   * Appends a batch a client built in the stored layout (checkClientBatch accepted it, and its
   * producer id is `producer`'s): the log seals it in place — base offset, timestamp, producer
   * sequence, CRC — and writes and caches that very buffer.
   */
  appendStored(batch: Buffer, checked: StoredBatchInfo, producer?: ProducerIdentity): Promise<AppendResult> {
    if ((producer?.id ?? null) !== checked.producerId) {
      return Promise.reject(new InvalidArgumentError("the batch's producer id is not the producer's"));
    }
    return this.enqueue(checked.count, checked.recordBytes, checked.largestRecord, producer, (baseOffset, timestamp) =>
      sealBatch(batch, baseOffset, timestamp, producer?.sequence ?? 0),
    );
  }

  /**
   * The checks every append passes (open, sizes, the pending bound, idempotence), then the batch
   * `build` makes for its offsets and timestamp is queued for the flush loop.
   */
  private enqueue(
    count: number,
    total: number,
    largest: number,
    producer: ProducerIdentity | undefined,
    build: (baseOffset: number, timestamp: number) => Buffer,
  ): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    if (this.failure) return Promise.reject(this.storageFailure());
    if (largest > this.opts.config.maxRecordBytes) {
      return Promise.reject(new MessageTooLargeError('record', largest, this.opts.config.maxRecordBytes));
    }
    if (total > this.opts.maxBatchBytes) {
      return Promise.reject(new MessageTooLargeError('batch', total, this.opts.maxBatchBytes));
    }
    // Producers that outrun the disk are pushed back instead of queued without bound.
    if (this.pendingBytes > 0 && this.pendingBytes + total > this.opts.maxPendingBytes) {
      return Promise.reject(new PartitionBusyError(this.opts.topic, this.opts.partition, this.opts.maxPendingBytes));
    }
    if (producer) {
      if (!Number.isSafeInteger(producer.sequence) || producer.sequence < 0) {
        return Promise.reject(new InvalidArgumentError('producer sequence must be a non-negative integer'));
      }
      if (producer.id.length === 0 || Buffer.byteLength(producer.id) > 64) {
        return Promise.reject(new InvalidArgumentError('producer id must be 1-64 bytes'));
      }
      let check;
      try {
        check = this.producers.check(producer.id, producer.sequence, count);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      if (check.kind === 'duplicate') {
        return Promise.resolve(check.batch.result).then((r) => ({ ...r, duplicate: true }));
      }
    }

    const now = this.opts.now();
    const timestamp = now > this.lastTimestamp ? now : this.lastTimestamp;
    this.lastTimestamp = timestamp;
    const baseOffset = this.nextOffset;
    this.nextOffset += count;
    const buf = build(baseOffset, timestamp);
    const result = new Promise<AppendResult>((resolve, reject) => {
      this.pending.push({ buf, baseOffset, count, timestamp, producer, resolve, reject });
    });
    this.pendingBytes += buf.length;
    if (producer) this.producers.record(producer.id, { sequence: producer.sequence, count, result });
    if (this.pendingBytes >= PIPELINE_MIN_BYTES && this.writes.length < MAX_WRITES_IN_FLIGHT) this.wakeFlush();
    this.scheduleFlush();
    return result;
  }

  private scheduleFlush(): void {
    if (!this.flushing) this.flushing = this.runExclusive(() => this.flushTurn());
  }

  /**
   * Writes what is queued, group by group, for at most {@link MAX_GROUPS_PER_TURN} groups, and
   * returns with nothing in flight, so retention and compaction swaps queued behind it are never
   * starved by a constant stream of appends. Another group is written while earlier ones are still
   * on their way to the disk only when at least {@link PIPELINE_MIN_BYTES} wait: large groups gain
   * from several syncs in flight, small ones from gathering behind the one in flight (fewer syncs).
   */
  private async flushTurn(): Promise<void> {
    try {
      let groups = 0;
      while (!this.failure && groups < MAX_GROUPS_PER_TURN && (this.pending.length > 0 || this.writes.length > 0)) {
        const canDispatch =
          this.pending.length > 0 &&
          (this.writes.length === 0 || (this.writes.length < MAX_WRITES_IN_FLIGHT && this.pendingBytes >= PIPELINE_MIN_BYTES));
        if (!canDispatch) {
          // Wakes when a write settles or enough is queued for another one.
          const oldest = this.writes[0]!;
          if (!oldest.settled) await this.flushWoken();
          if (oldest.settled) await this.completeOldestWrite();
          continue;
        }
        const { group, bytes } = this.takeGroup();
        try {
          if (this.needsRoll(bytes)) {
            await this.drainWrites();
            if (this.failure) {
              for (const batch of group) batch.reject(this.storageFailure());
              break;
            }
            await this.roll();
          }
          if (this.dataSync) await this.preallocate(bytes);
        } catch (err) {
          this.fail(err as Error, group);
          break;
        }
        this.dispatch(group, bytes);
        groups++;
      }
      await this.drainWrites();
    } finally {
      this.flushing = null;
      if (this.pending.length > 0 && !this.failure) this.scheduleFlush();
    }
  }

  /** The oldest queued batches, up to 512 batches / 32 MiB (at least one). */
  private takeGroup(): { group: PendingBatch[]; bytes: number } {
    let n = 0;
    let bytes = 0;
    while (n < this.pending.length && n < MAX_FLUSH_BATCHES && (n === 0 || bytes < MAX_FLUSH_BYTES)) {
      bytes += this.pending[n]!.buf.length;
      n++;
    }
    this.pendingBytes -= bytes;
    return { group: this.pending.splice(0, n), bytes };
  }

  /** Starts writing a group at the end of what was dispatched before it. */
  private dispatch(group: PendingBatch[], bytes: number): void {
    const write: GroupWrite = { group, bytes, position: this.writeEnd, error: null, settled: false, done: Promise.resolve() };
    this.writeEnd += bytes;
    write.done = this.writeAt(this.activeHandle!, group, bytes, write.position).then(
      () => {
        write.settled = true;
        this.wakeFlush();
      },
      (err: unknown) => {
        write.error = err instanceof Error ? err : new StorageError(String(err));
        write.settled = true;
        this.wakeFlush();
      },
    );
    this.writes.push(write);
  }

  /** Writes a group's batches at `position`; for fsync topics (O_DSYNC handle) durable on return. */
  private async writeAt(handle: FileHandle, group: PendingBatch[], bytes: number, position: number): Promise<void> {
    const buffers = group.map((b) => b.buf);
    const started = this.dataSync ? performance.now() : 0;
    let written = 0;
    while (written < bytes) {
      const { bytesWritten } = await handle.writev(written === 0 ? buffers : remainingBuffers(buffers, written), position + written);
      if (bytesWritten === 0) throw new StorageError('the disk accepted no bytes');
      written += bytesWritten;
    }
    if (this.dataSync) this.opts.onFsync?.((performance.now() - started) / 1000);
  }

  /**
   * Waits for the oldest write in flight and publishes it. Writes finish in any order but are
   * published in file order: the high watermark never passes a group that is not on disk. After
   * a failure every later group is refused too.
   */
  private async completeOldestWrite(): Promise<void> {
    const write = this.writes[0]!;
    await write.done;
    this.writes.shift();
    if (write.error !== null && !this.failure) this.fail(write.error, write.group);
    else if (this.failure) for (const batch of write.group) batch.reject(this.storageFailure());
    else {
      try {
        this.publish(write);
      } catch (err) {
        this.fail(err as Error, write.group);
      }
    }
  }

  /** Resolves at the next {@link wakeFlush}: a write settled, or another write can start. */
  private flushWoken(): Promise<void> {
    this.flushWake ??= deferred();
    return this.flushWake.promise;
  }

  private wakeFlush(): void {
    const wake = this.flushWake;
    if (wake === null) return;
    this.flushWake = null;
    wake.resolve();
  }

  private async drainWrites(): Promise<void> {
    while (this.writes.length > 0) await this.completeOldestWrite();
  }

  /** A group is on disk: indexes it, caches it, moves the high watermark and acknowledges it. */
  private publish({ group, bytes, position: start }: GroupWrite): void {
    const segment = this.activeSegment;
    if (start !== segment.size) throw new StorageError(`group written at ${start} but the segment ends at ${segment.size}`);
    let position = start;
    for (const batch of group) {
      const relOffset = batch.baseOffset - segment.baseOffset;
      const lastIndexed = segment.index!.lastPosition;
      if (this.forceIndexEntry || lastIndexed < 0 || position - lastIndexed >= this.opts.indexIntervalBytes) {
        segment.index!.add(relOffset, position, batch.timestamp);
        this.forceIndexEntry = false;
      }
      this.lastBatch = { position, relOffset, maxTimestamp: batch.timestamp };
      if (segment.firstTimestamp < 0) segment.firstTimestamp = batch.timestamp;
      segment.maxTimestamp = batch.timestamp;
      position += batch.buf.length;
      const endOffset = batch.baseOffset + batch.count;
      this.tail.add({ baseOffset: batch.baseOffset, endOffset, buf: batch.buf });
    }
    const groupRecords = group.reduce((n, b) => n + b.count, 0);
    this.avgStoredRecordBytes = this.avgStoredRecordBytes * 0.9 + (bytes / groupRecords) * 0.1;
    segment.size = position;
    const last = group[group.length - 1]!;
    segment.nextOffset = last.baseOffset + last.count;
    this.hw = segment.nextOffset;
    for (const batch of group) {
      const result: AppendResult = {
        partition: this.opts.partition,
        baseOffset: batch.baseOffset,
        count: batch.count,
        timestamp: batch.timestamp,
        duplicate: false,
      };
      if (batch.producer) this.producers.settle(batch.producer.id, batch.producer.sequence, result);
      batch.resolve(result);
    }
    this.notifyWaiters();
  }

  /**
   * A failed write or fsync leaves the file in an unknown state (after a failed fsync the page
   * cache may already have dropped the dirty pages), so the partition refuses further writes
   * until it is reopened, which re-validates the tail. Reads of what was acknowledged go on.
   */
  private fail(err: Error, group: PendingBatch[]): void {
    this.failure = err;
    this.opts.logger.error({ err, topic: this.opts.topic, partition: this.opts.partition }, 'partition write failed');
    const failure = this.storageFailure();
    this.pendingBytes = 0;
    for (const batch of [...group, ...this.pending.splice(0)]) batch.reject(failure);
  }

  private storageFailure(): StorageError {
    return new StorageError(`partition ${this.opts.topic}/${this.opts.partition} failed a write and is read-only until restart`, {
      cause: this.failure,
    });
  }

  /** fsync topics write through an O_DSYNC handle into a preallocated file. */
  private get dataSync(): boolean {
    return this.opts.config.durability === 'fsync';
  }

  /** Extends the active file (sparse) when `incoming` more bytes would run past its end. */
  private async preallocate(incoming: number): Promise<void> {
    const end = this.writeEnd + incoming;
    if (end <= this.activeFileBytes) return;
    const target = Math.max(end, Math.min(end + PREALLOCATE_BYTES, this.opts.config.segmentBytes));
    await this.activeHandle!.truncate(target);
    this.activeFileBytes = target;
  }

  /** Cuts the preallocated tail off the active file and syncs its length. */
  private async trimActive(): Promise<void> {
    const segment = this.activeSegment;
    if (this.activeFileBytes > segment.size) {
      await this.activeHandle!.truncate(segment.size);
      this.activeFileBytes = segment.size;
    }
    await this.activeHandle!.datasync();
  }

  private get activeSegment(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Whether `incomingBytes` more would pass the segment's size or age (an empty one never rolls). */
  private needsRoll(incomingBytes: number): boolean {
    const segment = this.activeSegment;
    if (this.writeEnd === 0) return false;
    const tooBig = this.writeEnd + incomingBytes > this.opts.config.segmentBytes;
    const tooOld = segment.firstTimestamp >= 0 && this.opts.now() - segment.firstTimestamp >= this.opts.config.segmentMs;
    return tooBig || tooOld;
  }

  /** Seals the active segment (fsync, final index entry, index files) and starts a new one. */
  private async roll(): Promise<void> {
    const sealed = this.activeSegment;
    await this.sealActive();
    await this.activeHandle!.close();
    this.activeHandle = null;
    this.opts.indexCache.set(sealed.logPath, sealed.index!);
    sealed.index = null;
    const next = new Segment(this.opts.dir, sealed.nextOffset, {
      size: 0,
      nextOffset: sealed.nextOffset,
      maxTimestamp: -1,
      firstTimestamp: -1,
      index: new SegmentIndex(),
    });
    this.activeHandle = await openForWrite(next.logPath, this.dataSync);
    this.activeFileBytes = 0;
    this.writeEnd = 0;
    this.segments.push(next);
    this.lastBatch = null;
    await this.syncDir();
    await this.writeProducerSnapshot();
  }

  /**
   * Trims and syncs the active segment and writes its final index entry and index files. The
   * trim comes first: a sealed segment's length on disk must be its data, since recovery scans
   * only the last segment.
   */
  private async sealActive(): Promise<void> {
    const segment = this.activeSegment;
    await this.trimActive();
    if (this.lastBatch) segment.index!.add(this.lastBatch.relOffset, this.lastBatch.position, this.lastBatch.maxTimestamp);
    await segment.writeIndex(segment.index!);
  }

  // ── read ──────────────────────────────────────────────────────────────────────────────────

  async read(offset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    if (this.closed) throw new EngineClosedError();
    const low = this.lowWatermark;
    if (!Number.isSafeInteger(offset) || offset < low || offset > this.hw) {
      throw new OffsetOutOfRangeError(offset, low, this.hw);
    }
    const records: StoredRecord[] = [];
    let next = offset;
    let bytes = 0;
    while (records.length < maxRecords && bytes < maxBytes && next < this.hw) {
      const cacheFirst = this.tail.firstOffset;
      let progress: { next: number; bytes: number };
      if (cacheFirst !== null && next >= cacheFirst) {
        progress = this.readFromCache(next, records, maxRecords, maxBytes - bytes);
      } else {
        if (next < this.lowWatermark) throw new OffsetOutOfRangeError(next, this.lowWatermark, this.hw);
        try {
          progress = await this.readFromSegment(this.segmentFor(next), next, records, maxRecords, maxBytes - bytes);
        } catch (err) {
          // Serve what precedes the damage; the next read starts at it and gets the error.
          if (!(err instanceof CorruptRecordError) || records.length === 0) throw err;
          next = records[records.length - 1]!.offset + 1;
          break;
        }
      }
      if (progress.next <= next) break;
      next = progress.next;
      bytes += progress.bytes;
    }
    return { records, nextOffset: next, lowWatermark: this.lowWatermark, highWatermark: this.hw };
  }

  private readFromCache(offset: number, out: StoredRecord[], maxRecords: number, maxBytes: number): { next: number; bytes: number } {
    let i = this.tail.find(offset);
    let next = offset;
    let bytes = 0;
    while (i >= 0 && out.length < maxRecords && bytes < maxBytes) {
      const cached = this.tail.at(i);
      if (!cached || cached.baseOffset >= this.hw) break;
      const check = checkBatch(cached.buf, 0, false);
      if (!check.ok) throw new StorageError(`cached batch at offset ${cached.baseOffset} is invalid: ${check.detail}`);
      bytes += decodeRecords(cached.buf, 0, check.header, next, out, maxRecords, maxBytes - bytes);
      next = nextAfter(check.header, out, next);
      i++;
    }
    return { next, bytes };
  }

  /**
   * Whole stored batches from `offset` (see Engine.readStored): the same positions, checks and
   * corrupt-region rules as `read`, but batches are collected as they are instead of decoded.
   */
  async readStored(offset: number, maxRecords: number, maxBytes: number, firstAlways = false): Promise<StoredBatchRead> {
    if (this.closed) throw new EngineClosedError();
    const low = this.lowWatermark;
    if (!Number.isSafeInteger(offset) || offset < low || offset > this.hw) {
      throw new OffsetOutOfRangeError(offset, low, this.hw);
    }
    const take = new StoredBatchCollector(offset, maxRecords, maxBytes, firstAlways);
    let next = offset;
    while (!take.full && next < this.hw) {
      const cacheFirst = this.tail.firstOffset;
      let reached: number;
      if (cacheFirst !== null && next >= cacheFirst) reached = this.storedFromCache(next, take);
      else {
        if (next < this.lowWatermark) throw new OffsetOutOfRangeError(next, this.lowWatermark, this.hw);
        try {
          reached = await this.storedFromSegment(this.segmentFor(next), next, take);
        } catch (err) {
          // Serve what precedes the damage; the next read starts at it and gets the error.
          if (!(err instanceof CorruptRecordError) || take.batches.length === 0) throw err;
          break;
        }
      }
      if (reached <= next) break;
      next = reached;
    }
    return {
      batches: take.batches,
      batchRecords: take.batchRecords,
      batchRecordBytes: take.batchRecordBytes,
      batchEnds: take.batchEnds,
      records: take.records,
      bytes: take.bytes,
      recordBytes: take.recordBytes,
      nextOffset: take.blocked === null ? next : offset,
      lowWatermark: this.lowWatermark,
      highWatermark: this.hw,
      blocked: take.blocked,
    };
  }

  /** Offers cached batches from `offset` to `take`; returns where reading continues. */
  private storedFromCache(offset: number, take: StoredBatchCollector): number {
    let i = this.tail.find(offset);
    let next = offset;
    while (i >= 0 && !take.full) {
      const cached = this.tail.at(i);
      if (!cached || cached.baseOffset >= this.hw) break;
      const check = checkBatch(cached.buf, 0, false);
      if (!check.ok) throw new StorageError(`cached batch at offset ${cached.baseOffset} is invalid: ${check.detail}`);
      if (!take.offer(cached.buf, 0, check.header)) break;
      next = lastOffsetOf(check.header) + 1;
      i++;
    }
    return next;
  }

  private async storedFromSegment(segment: Segment, offset: number, take: StoredBatchCollector): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const version = segment.version;
      const mark = take.mark();
      try {
        return await this.storedSegmentOnce(segment, offset, take);
      } catch (err) {
        // Retention deleted the segment, or compaction swapped it, while this read was under way.
        if (!this.segments.includes(segment)) throw new OffsetOutOfRangeError(offset, this.lowWatermark, this.hw);
        if (segment.version === version || attempt >= 2) throw err;
        take.rollback(mark);
      }
    }
  }

  private async storedSegmentOnce(segment: Segment, offset: number, take: StoredBatchCollector): Promise<number> {
    const index = await this.indexOf(segment);
    const start = index.positionFor(offset - segment.baseOffset);
    let next = offset;
    let first = true;
    const reachedEnd = await this.walk(
      segment,
      start,
      () => next,
      this.readChunkBytes(take.recordsLeft, take.bytesLeft),
      (buf, pos, header) => {
        if (first && start > 0 && header.baseOffset > offset) {
          throw new StorageError(`index of segment ${segment.name} disagrees with its log`);
        }
        first = false;
        if (lastOffsetOf(header) < next) return true;
        let taken: boolean;
        try {
          taken = take.offer(buf, pos, header);
        } catch (err) {
          if (err instanceof MalformedBatchError) throw new CorruptRecordError(segment.logPath, header.baseOffset, pos, err.message);
          throw err;
        }
        if (!taken) return false;
        next = lastOffsetOf(header) + 1;
        return !take.full;
      },
    );
    if (reachedEnd && segment !== this.activeSegment) next = Math.max(next, segment.nextOffset);
    return next;
  }

  private segmentFor(offset: number): Segment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo]!;
  }

  private async readFromSegment(
    segment: Segment,
    offset: number,
    out: StoredRecord[],
    maxRecords: number,
    maxBytes: number,
  ): Promise<{ next: number; bytes: number }> {
    const startCount = out.length;
    for (let attempt = 0; ; attempt++) {
      const version = segment.version;
      try {
        return await this.readSegmentOnce(segment, offset, out, maxRecords, maxBytes);
      } catch (err) {
        // Retention deleted the segment, or compaction swapped it, while this read was under way.
        if (!this.segments.includes(segment)) throw new OffsetOutOfRangeError(offset, this.lowWatermark, this.hw);
        if (segment.version === version || attempt >= 2) throw err;
        out.length = startCount;
      }
    }
  }

  private async readSegmentOnce(
    segment: Segment,
    offset: number,
    out: StoredRecord[],
    maxRecords: number,
    maxBytes: number,
  ): Promise<{ next: number; bytes: number }> {
    const index = await this.indexOf(segment);
    const start = index.positionFor(offset - segment.baseOffset);
    let next = offset;
    let bytes = 0;
    let first = true;
    const reachedEnd = await this.walk(
      segment,
      start,
      () => next,
      this.readChunkBytes(maxRecords - out.length, maxBytes),
      (buf, pos, header) => {
        if (first && start > 0 && header.baseOffset > offset) {
          // An index entry always points at or before its offset; this one is stale.
          throw new StorageError(`index of segment ${segment.name} disagrees with its log`);
        }
        first = false;
        if (lastOffsetOf(header) < next) return true;
        bytes += decodeBatchRecords(segment, buf, pos, header, next, out, maxRecords, maxBytes - bytes);
        next = nextAfter(header, out, next);
        return out.length < maxRecords && bytes < maxBytes;
      },
    );
    // At the end of a sealed segment, continue at the next one's base (compaction may leave gaps).
    if (reachedEnd && segment !== this.activeSegment) next = Math.max(next, segment.nextOffset);
    return { next, bytes };
  }

  /**
   * How much to read from disk at once: enough for the records asked for at the partition's
   * average record size, so a reader asking for 1,000 small records does not pull 1 MiB.
   */
  private readChunkBytes(records: number, maxBytes: number): number {
    const wanted = records * this.avgStoredRecordBytes * 1.25 + 4096;
    return Math.ceil(Math.max(READ_CHUNK_MIN, Math.min(maxBytes, wanted)));
  }

  /**
   * Visits batches of `segment` from byte `start`, reading in chunks of about `chunkBytes`.
   * Every batch is CRC-checked. A corrupt region entirely before `target()` (the next offset the
   * caller needs) is skipped; one holding it throws CorruptRecordError naming that offset.
   * Returns true when the end of the segment was reached, false when `visit` stopped the walk.
   */
  private async walk(
    segment: Segment,
    start: number,
    target: () => number,
    chunkBytes: number,
    visit: (buf: Buffer, pos: number, header: BatchHeader) => boolean,
  ): Promise<boolean> {
    const end = segment.size;
    const maxBatch = this.opts.maxBatchBytes + 1024;
    return this.opts.fdCache.with(segment.logPath, async (handle) => {
      let position = start;
      let chunk: Buffer = Buffer.alloc(0);
      let chunkStart = start;
      while (position < end) {
        let rel = position - chunkStart;
        let check = checkBatch(chunk, rel, true, maxBatch);
        // Read more when the batch at `position` is not wholly in the chunk; twice at most, as the
        // first read may only reveal how long the batch is.
        for (let attempt = 0; attempt < 2 && !check.ok && check.reason === 'incomplete'; attempt++) {
          const known = chunk.length - rel >= 8 ? chunk.readUInt32LE(rel + 4) : 0;
          const wanted = known <= maxBatch ? Math.max(chunkBytes, known) : chunkBytes;
          chunkStart = position;
          chunk = await readAt(handle, position, Math.min(wanted, end - position));
          rel = 0;
          check = checkBatch(chunk, 0, true, maxBatch);
        }
        if (check.ok) {
          position += check.header.length;
          if (!visit(chunk, rel, check.header)) return false;
          continue;
        }
        const resume = await findNextBatch(handle, position + 1, end, 0, maxBatch);
        const resumeOffset = resume === null ? segment.nextOffset : await this.baseOffsetAt(handle, resume);
        this.opts.logger.error(
          { topic: this.opts.topic, partition: this.opts.partition, segment: segment.name, position, detail: check.detail },
          'corrupt batch found while reading',
        );
        if (resume === null || resumeOffset > target()) {
          throw new CorruptRecordError(`${this.opts.topic}/${this.opts.partition}/${segment.name}.log`, target(), position, check.detail);
        }
        position = resume;
        chunk = Buffer.alloc(0);
        chunkStart = position;
      }
      return true;
    });
  }

  private async baseOffsetAt(handle: FileHandle, position: number): Promise<number> {
    const head = await readAt(handle, position, 24);
    return head.readUInt32LE(16) + head.readUInt32LE(20) * 2 ** 32;
  }

  /**
   * The segment's index. The active segment keeps its own; sealed segments' indexes live in the
   * engine's bounded IndexCache, loaded (or rebuilt by a scan) when a read needs them.
   */
  private async indexOf(segment: Segment): Promise<SegmentIndex> {
    if (segment.index) return segment.index;
    const cached = this.opts.indexCache.get(segment.logPath);
    if (cached) return cached;
    let index = await segment.loadIndex();
    if (!index) {
      this.opts.logger.warn({ topic: this.opts.topic, partition: this.opts.partition, segment: segment.name }, 'rebuilding segment index');
      index = (await this.scanSegment(segment, false)).index;
      await segment.writeIndex(index);
    }
    this.opts.indexCache.set(segment.logPath, index);
    if (segment.maxTimestamp < 0) segment.maxTimestamp = index.lastTimestamp;
    return index;
  }

  // ── wait / time ───────────────────────────────────────────────────────────────────────────

  waitForData(offset: number, options: WaitOptions): Promise<boolean> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    if (offset < this.hw) return Promise.resolve(true);
    if (options.timeoutMs <= 0 || options.signal?.aborted) return Promise.resolve(false);
    if (this.waiters.size >= this.opts.maxWaiters) return Promise.reject(new TooManyWaitersError(this.opts.maxWaiters));
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { offset, resolve, timer: undefined, cleanup: undefined };
      const finish = (ready: boolean): void => {
        if (!this.waiters.delete(waiter)) return;
        clearTimeout(waiter.timer);
        waiter.cleanup?.();
        resolve(ready);
      };
      waiter.timer = setTimeout(() => finish(false), options.timeoutMs);
      const signal = options.signal;
      if (signal) {
        const onAbort = (): void => finish(false);
        signal.addEventListener('abort', onAbort, { once: true });
        waiter.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      (waiter as { resolve: (ready: boolean) => void }).resolve = finish;
      this.waiters.add(waiter);
    });
  }

  private notifyWaiters(): void {
    for (const waiter of this.waiters) if (waiter.offset < this.hw) waiter.resolve(true);
  }

  async offsetForTimestamp(timestamp: number): Promise<number> {
    if (this.closed) throw new EngineClosedError();
    // Timestamps never decrease within a partition, so the first segment whose newest record is
    // at or after `timestamp` holds the answer.
    for (const segment of this.segments) {
      const index = await this.indexOf(segment);
      if (segment.maxTimestamp < timestamp || segment.size === 0) continue;
      let found = -1;
      await this.walk(segment, index.positionForTimestamp(timestamp), () => segment.baseOffset, READ_CHUNK_MIN, (buf, pos, header) => {
        if (header.maxTimestamp < timestamp) return true;
        const records: StoredRecord[] = [];
        decodeBatchRecords(segment, buf, pos, header, 0, records, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        const hit = records.find((r) => r.timestamp >= timestamp);
        if (hit) found = hit.offset;
        return false;
      });
      if (found >= 0 && found < this.hw) return found;
    }
    return this.hw;
  }

  // ── retention and compaction ──────────────────────────────────────────────────────────────

  /** Deletes whole sealed segments past the topic's age or size bound. */
  async enforceRetention(): Promise<number> {
    const { retentionMs, retentionBytes } = this.opts.config;
    if (this.closed || this.failure || (retentionMs === null && retentionBytes === null)) return 0;
    return this.runExclusive(async () => {
      const now = this.opts.now();
      const active = this.activeSegment;
      if (retentionMs !== null && active.size > 0 && active.maxTimestamp >= 0 && active.maxTimestamp < now - retentionMs) {
        await this.roll(); // an expired active segment must be sealed before it can go
      }
      let deleted = 0;
      while (this.segments.length > 1) {
        const oldest = this.segments[0]!;
        await this.indexOf(oldest);
        const expired = retentionMs !== null && oldest.maxTimestamp >= 0 && oldest.maxTimestamp < now - retentionMs;
        const oversized = retentionBytes !== null && this.sizeBytes - oldest.size >= retentionBytes;
        if (!expired && !oversized) break;
        await this.deleteOldestSegment();
        deleted++;
      }
      return deleted;
    });
  }

  /**
   * Deletes the sealed segments that hold only records below `offset` (the active segment stays,
   * so up to one segment of older records may remain). Resolves to the new low watermark.
   */
  async truncateBefore(offset: number): Promise<number> {
    if (this.closed) throw new EngineClosedError();
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > this.hw) {
      throw new OffsetOutOfRangeError(offset, this.lowWatermark, this.hw);
    }
    if (this.failure) throw this.storageFailure();
    return this.runExclusive(async () => {
      // A segment ends where the next one begins; only sealed ones (not the last) can go.
      while (this.segments.length > 1 && this.segments[1]!.baseOffset <= offset) {
        await this.deleteOldestSegment();
      }
      return this.lowWatermark;
    });
  }

  private async deleteOldestSegment(): Promise<void> {
    const oldest = this.segments.shift()!;
    this.tail.dropBefore(this.lowWatermark);
    this.opts.indexCache.delete(oldest.logPath);
    await this.opts.fdCache.invalidate(oldest.logPath);
    await Promise.all([oldest.logPath, oldest.indexPath, oldest.timeIndexPath].map((p) => rm(p, { force: true })));
    this.opts.logger.info({ topic: this.opts.topic, partition: this.opts.partition, segment: oldest.name }, 'retention deleted segment');
  }

  /**
   * Keeps only the latest record per key in sealed segments (and drops tombstones older than
   * `deleteRetentionMs`). Each sealed segment is rewritten to `<base>.log.cleaned`, fsynced and
   * renamed over the original, so a crash at any moment leaves either the old or the new file.
   */
  async compact(): Promise<{ removed: number }> {
    if (this.closed || this.failure || this.opts.config.cleanupPolicy !== 'compact' || this.segments.length < 2) {
      return { removed: 0 };
    }
    const latest = new Map<string, number>();
    for (const segment of this.segments) {
      const index = await this.indexOf(segment);
      let overflow = false;
      await this.walk(segment, index.positionFor(0), () => segment.baseOffset, 4 * 1024 * 1024, (buf, pos, header) => {
        const records: StoredRecord[] = [];
        decodeBatchRecords(segment, buf, pos, header, 0, records, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
        for (const r of records) if (r.key !== null && r.offset < this.hw) latest.set(keyString(r.key), r.offset);
        overflow = latest.size > this.opts.maxCompactionKeys;
        return !overflow;
      });
      if (overflow) {
        this.opts.logger.warn(
          { topic: this.opts.topic, partition: this.opts.partition, keys: latest.size },
          'compaction skipped: more distinct keys than maxCompactionKeys',
        );
        return { removed: 0 };
      }
    }
    const tombstoneHorizon = this.opts.now() - this.opts.config.deleteRetentionMs;
    let removed = 0;
    for (const segment of this.segments.slice(0, -1)) {
      removed += await this.compactSegment(segment, latest, tombstoneHorizon);
    }
    return { removed };
  }

  private async compactSegment(segment: Segment, latest: Map<string, number>, tombstoneHorizon: number): Promise<number> {
    const batches: Buffer[] = [];
    let removed = 0;
    const index = await this.indexOf(segment);
    await this.walk(segment, index.positionFor(0), () => segment.baseOffset, 4 * 1024 * 1024, (buf, pos, header) => {
      const records: StoredRecord[] = [];
      decodeBatchRecords(segment, buf, pos, header, 0, records, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      const kept: EncodableRecord[] = [];
      for (const r of records) {
        const superseded = r.key !== null && latest.get(keyString(r.key)) !== r.offset;
        const expiredTombstone = r.value === null && r.timestamp < tombstoneHorizon;
        if (superseded || expiredTombstone) {
          removed++;
          continue;
        }
        kept.push({
          key: r.key,
          value: r.value,
          headers: r.headers,
          offsetDelta: r.offset - header.baseOffset,
          timestampDelta: r.timestamp - header.firstTimestamp,
        });
      }
      if (kept.length > 0) {
        batches.push(encodeBatch({ baseOffset: header.baseOffset, timestamp: header.firstTimestamp, records: kept }));
      }
      return true;
    });
    if (removed === 0) return 0;

    const cleanedPath = `${segment.logPath}.cleaned`;
    const handle = await open(cleanedPath, 'w');
    try {
      if (batches.length > 0) await handle.writev(batches, 0);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await this.runExclusive(async () => {
      if (!this.segments.includes(segment)) {
        await rm(cleanedPath, { force: true }); // deleted by retention meanwhile
        return;
      }
      const newIndex = new SegmentIndex();
      let position = 0;
      for (const b of batches) {
        const header = (checkBatch(b, 0, false) as { ok: true; header: BatchHeader }).header;
        newIndex.add(header.baseOffset - segment.baseOffset, position, header.maxTimestamp);
        position += b.length;
      }
      await rename(cleanedPath, segment.logPath);
      // File, size, index, version and tail cache change together (no await in between), so a
      // read sees either all old or all new, or notices the version change and retries.
      segment.size = position;
      segment.version++;
      this.opts.indexCache.set(segment.logPath, newIndex);
      this.tail.dropBefore(segment.nextOffset); // it still holds the uncompacted bytes
      await this.opts.fdCache.invalidate(segment.logPath);
      await segment.writeIndex(newIndex);
      await this.syncDir();
    });
    this.opts.logger.info({ topic: this.opts.topic, partition: this.opts.partition, segment: segment.name, removed }, 'compacted segment');
    return removed;
  }

  // ── recovery and shutdown ─────────────────────────────────────────────────────────────────

  private async recover(): Promise<void> {
    const { dir, logger, topic, partition } = this.opts;
    await mkdir(dir, { recursive: true });
    const files = await readdir(dir);
    // Leftovers of an interrupted compaction or index write: the originals are intact.
    await Promise.all(files.filter((f) => f.endsWith('.cleaned') || f.endsWith('.tmp')).map((f) => rm(join(dir, f), { force: true })));
    const bases = files
      .filter((f) => /^\d{20}\.log$/.test(f))
      .map((f) => Number(f.slice(0, 20)))
      .sort((a, b) => a - b);
    const marker = await this.takeCleanMarker();
    if (bases.length === 0) bases.push(0);

    const sizes = await Promise.all(
      bases.map((base) =>
        stat(join(dir, `${Segment.fileBase(base)}.log`)).then(
          (s) => s.size,
          (err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return 0;
            throw err;
          },
        ),
      ),
    );
    this.segments = bases.map(
      (base, i) =>
        new Segment(dir, base, {
          size: sizes[i]!,
          nextOffset: bases[i + 1] ?? base,
          maxTimestamp: -1,
          firstTimestamp: -1,
          index: null,
        }),
    );
    const active = this.activeSegment;
    this.activeHandle = await openForWrite(active.logPath, this.dataSync);

    let replayFrom: Array<{ header: BatchHeader }> = [];
    const trusted = marker !== null && marker.segment === active.baseOffset && marker.size === active.size;
    const index = trusted ? await active.loadIndex() : null;
    if (trusted && index) {
      active.index = index;
      active.nextOffset = marker.nextOffset;
      active.maxTimestamp = marker.maxTimestamp;
      active.firstTimestamp = marker.firstTimestamp;
    } else {
      const scan = await this.scanSegment(active, true);
      active.index = scan.index;
      replayFrom = scan.batches;
      if (marker === null && active.size > 0) logger.info({ topic, partition, segment: active.name, batches: scan.batches.length }, 'recovered active segment after unclean shutdown');
    }
    this.activeFileBytes = active.size; // a preallocated tail was cut by the scan as a torn one
    this.writeEnd = active.size;
    this.forceIndexEntry = true;
    if (active.nextOffset > active.baseOffset) this.avgStoredRecordBytes = active.size / (active.nextOffset - active.baseOffset);
    this.nextOffset = active.nextOffset;
    this.hw = this.nextOffset;
    this.lastTimestamp = Math.max(active.maxTimestamp, 0);
    if (active.size === 0 && this.segments.length > 1) {
      const previous = this.segments[this.segments.length - 2]!;
      await this.indexOf(previous);
      this.lastTimestamp = Math.max(this.lastTimestamp, previous.maxTimestamp);
    }
    await this.restoreProducers(replayFrom);
  }

  /**
   * Scans a segment's log, rebuilding its index. For the active segment (`repair`), a torn tail
   * is truncated away; corrupt regions followed by valid batches are kept (and reported), since
   * cutting there would discard acknowledged records after them.
   */
  private async scanSegment(segment: Segment, repair: boolean): Promise<{ index: SegmentIndex; batches: Array<{ header: BatchHeader }> }> {
    const { logger, topic, partition, indexIntervalBytes } = this.opts;
    const index = new SegmentIndex();
    const batches: Array<{ header: BatchHeader }> = [];
    let force = true;
    let last: { position: number; header: BatchHeader } | null = null;
    const handle = repair ? this.activeHandle! : await open(segment.logPath, 'r');
    try {
      for await (const event of scanBatches(handle, 0, segment.size, segment.baseOffset, this.opts.maxBatchBytes + 1024)) {
        switch (event.type) {
          case 'batch': {
            const { position, header } = event.batch;
            if (force || position - index.lastPosition >= indexIntervalBytes) {
              index.add(header.baseOffset - segment.baseOffset, position, header.maxTimestamp);
              force = false;
            }
            last = { position, header };
            if (segment.firstTimestamp < 0) segment.firstTimestamp = header.firstTimestamp;
            if (repair && header.producerId !== null) batches.push({ header });
            break;
          }
          case 'corrupt':
            force = true;
            logger.error(
              { topic, partition, segment: segment.name, position: event.region.position, endPosition: event.region.endPosition, detail: event.region.detail },
              'corrupt region inside the log: kept and reported, records in it are never served',
            );
            break;
          case 'torn':
            if (repair) {
              logger.warn({ topic, partition, segment: segment.name, position: event.position, dropped: segment.size - event.position, detail: event.detail }, 'truncating torn tail');
              await handle.truncate(event.position);
              await handle.datasync();
              segment.size = event.position;
            } else {
              logger.error({ topic, partition, segment: segment.name, position: event.position, detail: event.detail }, 'corrupt tail in a sealed segment');
            }
            break;
          default: {
            const unreachable: never = event;
            throw new Error(`unknown scan event ${JSON.stringify(unreachable)}`);
          }
        }
      }
    } finally {
      if (!repair) await handle.close();
    }
    if (last) {
      index.add(last.header.baseOffset - segment.baseOffset, last.position, last.header.maxTimestamp);
      segment.maxTimestamp = last.header.maxTimestamp;
      if (repair) {
        segment.nextOffset = lastOffsetOf(last.header) + 1;
        this.lastBatch = { position: last.position, relOffset: last.header.baseOffset - segment.baseOffset, maxTimestamp: last.header.maxTimestamp };
      }
    }
    return { index, batches };
  }

  private async takeCleanMarker(): Promise<CleanMarker | null> {
    const path = join(this.opts.dir, CLEAN_MARKER);
    try {
      const marker = JSON.parse(await readFile(path, 'utf8')) as CleanMarker;
      await unlink(path);
      return marker;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      // An unreadable marker only costs a scan of the active segment.
      this.opts.logger.warn({ err, path }, 'ignoring unreadable clean-shutdown marker');
      await rm(path, { force: true });
      return null;
    }
  }

  private async restoreProducers(replay: Array<{ header: BatchHeader }>): Promise<void> {
    let snapshot: ProducerSnapshot | null = null;
    try {
      snapshot = JSON.parse(await readFile(join(this.opts.dir, PRODUCER_SNAPSHOT), 'utf8')) as ProducerSnapshot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.opts.logger.warn({ err }, 'ignoring unreadable producer snapshot; idempotence restarts for old producers');
      }
    }
    if (snapshot) this.producers.restore(snapshot);
    const from = snapshot?.offset ?? 0;
    for (const { header } of replay) {
      if (header.producerId === null || header.baseOffset < from) continue;
      const result: AppendResult = {
        partition: this.opts.partition,
        baseOffset: header.baseOffset,
        count: header.count,
        timestamp: header.firstTimestamp,
        duplicate: false,
      };
      this.producers.record(header.producerId, { sequence: header.producerSequence, count: header.count, result });
      this.producers.settle(header.producerId, header.producerSequence, result);
    }
  }

  private async writeProducerSnapshot(): Promise<void> {
    const path = join(this.opts.dir, PRODUCER_SNAPSHOT);
    await writeFile(`${path}.tmp`, JSON.stringify(this.producers.snapshot(this.hw)));
    await rename(`${path}.tmp`, path);
  }

  private async syncDir(): Promise<void> {
    const handle = await open(this.opts.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Flushes pending appends and seals state so the next open needs no scan. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters) waiter.resolve(false);
    while (this.flushing) await this.flushing;
    await this.runExclusive(async () => {
      if (!this.activeHandle) return;
      if (!this.failure) {
        await this.sealActive();
        await this.writeProducerSnapshot();
        const active = this.activeSegment;
        const marker: CleanMarker = {
          segment: active.baseOffset,
          size: active.size,
          nextOffset: active.nextOffset,
          maxTimestamp: active.maxTimestamp,
          firstTimestamp: active.firstTimestamp,
        };
        await writeFile(join(this.opts.dir, CLEAN_MARKER), JSON.stringify(marker));
        await this.syncDir();
      }
      await this.activeHandle.close();
      this.activeHandle = null;
    });
    this.tail.clear();
    await Promise.all(this.segments.map((s) => this.opts.fdCache.invalidate(s.logPath)));
  }

  /** Runs `fn` after every earlier exclusive operation (flush, roll, retention, compaction swap). */
  private runExclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.exclusive.then(fn, fn);
    this.exclusive = run.catch(() => undefined); // the caller of runExclusive sees the error
    return run;
  }
}

function decodeBatchRecords(
  segment: Segment,
  buf: Buffer,
  pos: number,
  header: BatchHeader,
  fromOffset: number,
  out: StoredRecord[],
  maxRecords: number,
  maxBytes: number,
): number {
  try {
    return decodeRecords(buf, pos, header, fromOffset, out, maxRecords, maxBytes);
  } catch (err) {
    if (err instanceof MalformedBatchError) {
      throw new CorruptRecordError(segment.logPath, header.baseOffset, pos, err.message);
    }
    throw err;
  }
}

/** Where reading continues after decoding (part of) a batch into `out`. */
function nextAfter(header: BatchHeader, out: StoredRecord[], previous: number): number {
  const last = out[out.length - 1];
  // The batch was read to its end unless the last record taken is not the batch's last.
  if (last && last.offset >= previous && last.offset < lastOffsetOf(header)) return last.offset + 1;
  return lastOffsetOf(header) + 1;
}

function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function remainingBuffers(buffers: Buffer[], skip: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}
