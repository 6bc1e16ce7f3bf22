import { TooManyWaitersError, type Engine, type StoredBatchRead, type StoredRecord } from '../engine/index.js';
import { BUDGET_RETRY_MS, PUSH_MAX_BYTES, PUSH_MAX_RECORDS, READ_AHEAD_BYTES, READ_AHEAD_HOLD_MS, WAIT_SLICE_MS, WAITER_RETRY_MS } from './defaults.js';
import type { ReadBudget } from './read-budget.js';
import type { OutboundFrame, RecordFrames, RecordsPush } from './record-frames.js';
import type { StreamObserver } from './stream-session.js';

/**
 * - `credit`: out of record or byte credit; resumes when credit is added
 * - `backpressure`: the connection's send buffer is over its bound; resumes when it drains
 * - `reading`: a read is in flight
 * - `waiting`: caught up; parked in `engine.waitForData`
 * - `failed`: a read failed (reported to the client); resumes on seek
 * - `closed`: unsubscribed, revoked or the connection closed
 */
export type SubscriptionState = 'credit' | 'backpressure' | 'reading' | 'waiting' | 'failed' | 'closed';

export interface SubscriptionStats {
  readonly sub: string;
  readonly topic: string;
  readonly partition: number;
  readonly state: SubscriptionState;
  /** The only position a subscription keeps: where the next read starts. */
  readonly nextOffset: number;
  readonly recordCredits: number;
  /** `null` when bytes are not counted. */
  readonly byteCredits: number | null;
  /** Records read ahead while out of credit and not yet pushed (see {@link Subscription}). */
  readonly readAhead: number;
}

/** Where a subscription sends and whom it tells about its state. Implemented by the session. */
export interface SubscriptionSink {
  send(frame: OutboundFrame): void;
  /** False while the connection's send buffer is over its bound. */
  readonly writable: boolean;
  /** The subscription stopped on a full send buffer; call `resume()` once it drained. */
  parkUntilWritable(sub: Subscription): void;
  /** A read failed; the subscription is `failed` until it is moved with `seek`. */
  subscriptionFailed(sub: Subscription, err: unknown): void;
}

export interface SubscriptionOptions {
  readonly sub: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Initial credit. Byte credit is counted only when `bytes` is given here. */
  readonly credits: { readonly records: number; readonly bytes?: number | undefined };
  readonly engine: Engine;
  /** The connection's encoding: what a pushed frame looks like and what a record weighs in byte credit. */
  readonly frames: RecordFrames;
  readonly sink: SubscriptionSink;
  /** Bytes reads may hold at once across the server; a push waits while it is spent. */
  readonly readBudget?: ReadBudget;
  /** Told what each pushed frame carried (metrics). */
  readonly observer?: Pick<StreamObserver, 'delivered' | 'deliveredCount'>;
  /**
   * Push whole stored batches (`stored` frames) where the engine and the encoding can, records
   * otherwise (and whenever the first batch needs more credit than there is).
   */
  readonly stored?: boolean;
}

/** What was read while the subscription had no credit: pushed first when credit comes. */
type ReadAhead = (
  | {
      readonly kind: 'batches';
      /** Stored batches whose records from `from` (the subscription's next offset) are pushed transcoded. */
      readonly read: StoredBatchRead;
      from: number;
      /** Records of `read` pushed so far. */
      sent: number;
    }
  | {
      readonly kind: 'records';
      /** `records[0]` is at the subscription's next offset. */
      records: readonly StoredRecord[];
      /** Where the read that returned them ended. */
      readonly readNextOffset: number;
    }
  | {
      readonly kind: 'stored';
      readonly read: StoredBatchRead;
      /** The next batch to push; it delivers from `from`, the subscription's next offset. */
      first: number;
      from: number;
    }
) & {
  /** Held from the read budget until the last of it is pushed or it is dropped. */
  readonly grant: number;
  /** Drops it if credit does not come soon. */
  readonly expiry: ReturnType<typeof setTimeout>;
};

/**
 * Credit-based push of one partition, from a position, to one connection.
 *
 * It holds no records: it remembers the next offset and its credit, reads from the engine only
 * as much as the credit allows (one read per pushed frame, at most {@link PUSH_MAX_RECORDS}
 * records), and drops what it read but could not send (a record larger than the byte credit
 * left) to read it again when credit returns. When caught up it parks in `engine.waitForData`
 * with an AbortSignal, so an idle or slow subscription costs a few numbers and at most one
 * waiter, never a queue.
 *
 * Reading ahead: a consumer behind the head returns credit while it still has records to work
 * through, so a subscription that runs out of credit there reads its next chunk at once (at most
 * {@link READ_AHEAD_BYTES}, only from the spare half of the server's read budget, dropped after
 * {@link READ_AHEAD_HOLD_MS} without credit). When credit comes the chunk is only encoded and
 * sent: the disk read, checksum and decode happened while the consumer was busy, not while it
 * waited. A caught-up subscription never reads ahead (its next records are not written yet).
 *
 * Where the engine keeps stored batches and the connection is binary, reads (and read-aheads)
 * are of whole stored batches and each `records` push is built from them by the encoding
 * (`fromBatches`): no record is decoded into an object only to be encoded again.
 *
 * Stored batches (`stored`, docs/protocol.md): whole batches go out as the engine keeps them,
 * only whole and only within the credit; when the next one does not fit, the records that fit go
 * as an ordinary push, and the subscription reads records for a while before it tries batches
 * again (see `recordReadsBeforeStored`).
 *
 * Frames are pushed in offset order with no gap and no duplicate, except across `seek`.
 */
export class Subscription {
  readonly sub: string;
  readonly topic: string;
  readonly partition: number;
  private nextOffset: number;
  private recordCredits: number;
  private byteCredits: number;
  private readonly countBytes: boolean;
  /** Encoded size of the record at `nextOffset` when it did not fit the byte credit. */
  private bytesNeeded = 1;
  private state: SubscriptionState = 'credit';
  /** A pump loop is running (reading, waiting or about to). */
  private running = false;
  /** Kicked while running: the loop may be on its way out, so it checks once more when it ends. */
  private kickedWhileRunning = false;
  /** Repositioned by seek and not yet restarted: pushes nothing. */
  private held = false;
  /** Bumped by seek and close: a read or wait begun under an older epoch is discarded. */
  private epoch = 0;
  /**
   * Cuts short the wait or sleep in progress; aborted by seek and close, and only then replaced,
   * so a live subscription waiting between records does not build a controller per wait.
   */
  private waitAbort = new AbortController();
  private readonly engine: Engine;
  private readonly frames: RecordFrames;
  private readonly sink: SubscriptionSink;
  private readonly observer: Pick<StreamObserver, 'delivered' | 'deliveredCount'> | undefined;
  /** Pushes stored batches (see SubscriptionOptions.stored). */
  private readonly stored: boolean;
  /**
   * Reads stored batches and has the encoding build `records` pushes from them (binary), instead
   * of reading records decoded into objects only to be encoded again.
   */
  private readonly transcode: boolean;
  /**
   * Reads of records left before stored batches are tried again: set when the first batch did
   * not fit the credit (batches larger than half the consumer's window, say), so such a
   * partition is not read twice per push, once as batches and once as records. The wait doubles
   * with each such miss in a row (a partition's batches are usually alike) and ends with a
   * stored push.
   */
  private recordReadsBeforeStored = 0;
  private storedMisses = 0;
  private readonly readBudget: ReadBudget | undefined;
  /** The high watermark the last read saw: reading ahead is worth it only below it. */
  private lastHighWatermark = 0;
  private ahead: ReadAhead | null = null;
  /** The read-ahead under way; it never rejects. */
  private aheadRead: Promise<void> | null = null;

  constructor(options: SubscriptionOptions) {
    this.sub = options.sub;
    this.topic = options.topic;
    this.partition = options.partition;
    this.nextOffset = options.offset;
    this.recordCredits = options.credits.records;
    this.countBytes = options.credits.bytes !== undefined;
    this.byteCredits = options.credits.bytes ?? Number.POSITIVE_INFINITY;
    this.engine = options.engine;
    this.frames = options.frames;
    this.sink = options.sink;
    this.observer = options.observer;
    this.readBudget = options.readBudget;
    this.stored = options.stored === true && options.engine.readStored !== undefined && options.frames.stored !== undefined;
    this.transcode = options.engine.readStored !== undefined && options.frames.fromBatches !== undefined;
  }

  /** Starts pushing. Call after the reply that announces the subscription has been sent. */
  start(): void {
    this.held = false;
    this.kick();
  }

  /** Adds credit; `bytes` is ignored when bytes are not counted. Totals saturate at 2^53 − 1. */
  addCredit(records: number, bytes: number): void {
    if (this.state === 'closed') return;
    this.recordCredits = Math.min(this.recordCredits + records, Number.MAX_SAFE_INTEGER);
    if (this.countBytes) this.byteCredits = Math.min(this.byteCredits + bytes, Number.MAX_SAFE_INTEGER);
    if (this.state === 'credit') this.kick();
  }

  /** Moves to `offset`: nothing read from the old position is sent after this returns, and nothing from the new one before start(). */
  seek(offset: number): void {
    if (this.state === 'closed') return;
    this.epoch++;
    this.dropReadAhead();
    this.nextOffset = offset;
    this.bytesNeeded = 1;
    this.waitAbort.abort();
    if (this.state === 'failed') this.state = 'credit';
    // Held until start(): the session sends its `subscribed` reply first, so no record from the
    // new position can overtake it.
    this.held = true;
  }

  /** Called by the sink when the send buffer has drained. */
  resume(): void {
    if (this.state === 'backpressure') this.kick();
  }

  /** Stops for good: nothing is sent after this returns. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.epoch++;
    this.dropReadAhead();
    this.waitAbort.abort();
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  stats(): SubscriptionStats {
    return {
      sub: this.sub,
      topic: this.topic,
      partition: this.partition,
      state: this.state,
      nextOffset: this.nextOffset,
      recordCredits: this.recordCredits,
      byteCredits: this.countBytes ? this.byteCredits : null,
      readAhead: this.readAheadRecords(),
    };
  }

  private kick(): void {
    if (this.state === 'closed' || this.state === 'failed') return;
    if (this.running) {
      this.kickedWhileRunning = true;
      return;
    }
    this.running = true;
    void this.pump();
  }

  /** Never rejects: failures become the `failed` state and are reported through the sink. */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        if (this.state === 'closed' || this.held) return;
        if (this.recordCredits <= 0 || this.byteCredits < this.bytesNeeded) {
          this.state = 'credit';
          this.startReadAhead();
          return;
        }
        if (!this.sink.writable) {
          this.park();
          return;
        }
        const epoch = this.epoch;
        try {
          if (!(await this.step(epoch))) return;
        } catch (err) {
          // A read begun before a seek or close failed: its position no longer matters.
          if (epoch !== this.epoch) continue;
          this.state = 'failed';
          this.sink.subscriptionFailed(this, err);
          return;
        }
      }
    } finally {
      this.running = false;
      if (this.kickedWhileRunning) {
        this.kickedWhileRunning = false;
        this.kick();
      }
    }
  }

  private park(): void {
    this.state = 'backpressure';
    this.sink.parkUntilWritable(this);
  }

  /** One read, then one pushed frame or one wait for data. False when parked on backpressure. */
  private async step(epoch: number): Promise<boolean> {
    this.state = 'reading';
    if (this.aheadRead !== null) await this.aheadRead;
    if (epoch !== this.epoch) return true;
    if (this.ahead !== null) return this.pushReadAhead();
    const wanted = Math.min(this.byteCredits, PUSH_MAX_BYTES);
    const grant = this.readBudget === undefined ? wanted : this.readBudget.tryAcquire(wanted);
    if (grant === 0) {
      // The server holds as many read bytes as it may: wait for other reads to finish.
      await this.pause(BUDGET_RETRY_MS);
      return true;
    }
    let outcome: boolean | 'caught-up' | 'blocked';
    try {
      outcome = this.storedNow() ? await this.readStoredAndPush(epoch, grant) : 'blocked';
      // Not stored, or the first batch needs more credit than there is: the records that fit.
      if (outcome === 'blocked') outcome = this.transcode ? await this.readBatchesAndPush(epoch, grant) : await this.readAndPush(epoch, grant);
    } finally {
      if (this.readBudget !== undefined) this.readBudget.release(grant);
    }
    // Waited for without the grant: a caught-up subscription holds no read memory, so a
    // thousand of them parked at the tail do not spend the budget that fetches need.
    if (outcome === 'caught-up') await this.waitForRecords();
    return outcome !== false;
  }

  /** One read and one pushed frame; 'caught-up' when there was nothing to read. False when parked on backpressure. */
  private async readAndPush(epoch: number, maxBytes: number): Promise<boolean | 'caught-up'> {
    const result = await this.engine.read(this.topic, this.partition, this.nextOffset, {
      maxRecords: Math.min(this.recordCredits, PUSH_MAX_RECORDS),
      maxBytes,
    });
    if (epoch !== this.epoch) return true;
    this.lastHighWatermark = result.highWatermark;
    if (result.records.length > 0) {
      // Checked again after the read: other subscriptions of the connection may have filled
      // the send buffer meanwhile. What was read is dropped, so at most one frame ever goes
      // past the bound, however many subscriptions share the connection.
      if (!this.sink.writable) {
        this.park();
        return false;
      }
      this.push(result.records, result.nextOffset);
      return true;
    }
    this.nextOffset = result.nextOffset;
    // Past a compacted gap there may be more to read at once.
    return result.nextOffset < result.highWatermark ? true : 'caught-up';
  }

  /**
   * One read of stored batches and one `records` frame built from them (see `transcode`);
   * 'caught-up' when there was nothing to read, false when parked on backpressure. As with
   * readAndPush, `maxBytes` bounds the read softly: the first batch comes whole, whatever its
   * size, and what the credit does not cover is dropped.
   */
  private async readBatchesAndPush(epoch: number, maxBytes: number): Promise<boolean | 'caught-up'> {
    const read = await this.engine.readStored!(this.topic, this.partition, this.nextOffset, {
      maxRecords: Math.min(this.recordCredits, PUSH_MAX_RECORDS),
      maxBytes,
      firstBatchAlways: true,
    });
    if (epoch !== this.epoch) return true;
    this.lastHighWatermark = read.highWatermark;
    if (read.batches.length > 0) {
      if (!this.sink.writable) {
        this.park();
        return false;
      }
      this.pushFromBatches(read, this.nextOffset);
      return true;
    }
    this.nextOffset = read.nextOffset;
    return read.nextOffset < read.highWatermark ? true : 'caught-up';
  }

  /** One read of whole stored batches and one `stored` frame; 'blocked' when the first batch does not fit the credit. */
  private async readStoredAndPush(epoch: number, maxBytes: number): Promise<boolean | 'caught-up' | 'blocked'> {
    const read = await this.engine.readStored!(this.topic, this.partition, this.nextOffset, {
      maxRecords: Math.min(this.recordCredits, PUSH_MAX_RECORDS),
      maxBytes,
    });
    if (epoch !== this.epoch) return true;
    this.lastHighWatermark = read.highWatermark;
    if (read.blocked !== null) {
      this.storedMissed();
      return 'blocked';
    }
    if (read.batches.length > 0) {
      if (!this.sink.writable) {
        this.park();
        return false;
      }
      this.pushStored(read, 0, read.batches.length);
      return true;
    }
    this.nextOffset = read.nextOffset;
    return read.nextOffset < read.highWatermark ? true : 'caught-up';
  }

  private storedMissed(): void {
    this.storedMisses++;
    this.recordReadsBeforeStored = Math.min(STORED_RETRY_MIN_READS * 2 ** (this.storedMisses - 1), STORED_RETRY_MAX_READS);
  }

  /** Whether this read should be of stored batches (counting down the record reads after a blocked one). */
  private storedNow(): boolean {
    if (!this.stored) return false;
    if (this.recordReadsBeforeStored === 0) return true;
    this.recordReadsBeforeStored--;
    return false;
  }

  /** Pushes batches [first, first + count) of `read` as one `stored` frame. */
  private pushStored(read: StoredBatchRead, first: number, count: number): void {
    const batches = first === 0 && count === read.batches.length ? read.batches : read.batches.slice(first, first + count);
    let records = 0;
    let bytes = 0;
    let recordBytes = 0;
    for (let i = first; i < first + count; i++) {
      records += read.batchRecords[i]!;
      bytes += read.batches[i]!.byteLength;
      recordBytes += read.batchRecordBytes[i]!;
    }
    const nextOffset = first + count === read.batches.length ? read.nextOffset : read.batchEnds[first + count - 1]!;
    const frame = this.frames.stored(this.sub, this.partition, this.nextOffset, nextOffset, batches, bytes)!;
    this.storedMisses = 0;
    this.nextOffset = nextOffset;
    this.bytesNeeded = 1;
    this.recordCredits -= records;
    if (this.countBytes) this.byteCredits -= bytes;
    this.sink.send(frame);
    this.observer?.deliveredCount?.(this.topic, records, recordBytes);
  }

  /** How many batches of `read` from `first` on fit the credit left. */
  private batchesThatFit(read: StoredBatchRead, first: number): number {
    let records = 0;
    let bytes = 0;
    let n = 0;
    for (let i = first; i < read.batches.length; i++) {
      records += read.batchRecords[i]!;
      bytes += read.batches[i]!.byteLength;
      if (records > Math.min(this.recordCredits, PUSH_MAX_RECORDS) || (this.countBytes && bytes > this.byteCredits) || bytes > PUSH_MAX_BYTES) break;
      n++;
    }
    return n;
  }

  private async waitForRecords(): Promise<void> {
    this.state = 'waiting';
    const signal = this.waitSignal();
    try {
      await this.engine.waitForData(this.topic, this.partition, this.nextOffset, { timeoutMs: WAIT_SLICE_MS, signal });
    } catch (err) {
      if (!(err instanceof TooManyWaitersError)) throw err;
      // The partition's waiter bound is reached; poll instead of failing the subscription.
      await sleep(WAITER_RETRY_MS, signal);
    }
  }

  /** The signal that seek and close abort (a fresh one once the last was used up). */
  private waitSignal(): AbortSignal {
    if (this.waitAbort.signal.aborted) this.waitAbort = new AbortController();
    return this.waitAbort.signal;
  }

  /** Sleeps, cut short by seek or close (which abort `wait`). */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, this.waitSignal());
  }

  /**
   * Sends what the credit allows of `records` as one frame and returns how many that was; the
   * caller drops or keeps the rest.
   */
  private push(records: readonly StoredRecord[], readNextOffset: number): number {
    const push = this.frames.records(this.sub, this.partition, records, readNextOffset, this.recordCredits, this.countBytes, this.byteCredits);
    if (this.send(push)) this.observer?.delivered(this.topic, records, push.sent);
    return push.sent;
  }

  /**
   * Sends what the credit allows of the records of `read` from `from` as one `records` frame
   * and returns how many that was.
   */
  private pushFromBatches(read: StoredBatchRead, from: number): number {
    const push = this.frames.fromBatches!(this.sub, this.partition, read.batches, from, read.nextOffset, this.recordCredits, this.countBytes, this.byteCredits);
    if (this.send(push)) this.observer?.deliveredCount?.(this.topic, push.sent, push.payloadBytes);
    return push.sent;
  }

  /** Sends a push and charges its credit; false when it holds nothing (the first record needs more byte credit than there is). */
  private send(push: RecordsPush): boolean {
    if (push.frame === null) {
      this.bytesNeeded = push.firstSize;
      return false;
    }
    this.nextOffset = push.nextOffset;
    this.bytesNeeded = 1;
    this.recordCredits -= push.sent;
    if (this.countBytes) this.byteCredits -= push.bytes;
    this.sink.send(push.frame);
    return true;
  }

  /** Reads the next chunk while there is no credit to push it (see the class comment). */
  private startReadAhead(): void {
    const budget = this.readBudget;
    if (budget === undefined || this.ahead !== null || this.aheadRead !== null || this.held) return;
    if (this.nextOffset >= this.lastHighWatermark) return;
    const grant = budget.tryAcquireSpare(READ_AHEAD_BYTES);
    if (grant === 0) return;
    const epoch = this.epoch;
    const offset = this.nextOffset;
    const limits = { maxRecords: PUSH_MAX_RECORDS, maxBytes: grant };
    type Held = DistributiveOmit<ReadAhead, 'grant' | 'expiry'>;
    const hold = (held: Held | null, highWatermark: number): void => {
      this.aheadRead = null;
      if (held === null || epoch !== this.epoch || this.nextOffset !== offset) {
        budget.release(grant);
        return;
      }
      this.lastHighWatermark = highWatermark;
      const expiry = setTimeout(() => this.dropReadAhead(), READ_AHEAD_HOLD_MS);
      expiry.unref?.();
      this.ahead = { ...held, grant, expiry };
    };
    const reading = this.storedNow()
      ? this.engine.readStored!(this.topic, this.partition, offset, limits).then((read) => {
          // A first batch too large to read ahead is left to the read the credit brings.
          if (read.blocked !== null) this.storedMissed();
          hold(read.batches.length === 0 ? null : { kind: 'stored', read, first: 0, from: offset }, read.highWatermark);
        })
      : this.transcode
        ? this.engine.readStored!(this.topic, this.partition, offset, { ...limits, firstBatchAlways: true }).then((read) =>
            hold(read.batches.length === 0 ? null : { kind: 'batches', read, from: offset, sent: 0 }, read.highWatermark),
          )
        : this.engine.read(this.topic, this.partition, offset, limits).then((result) =>
          hold(result.records.length === 0 ? null : { kind: 'records', records: result.records, readNextOffset: result.nextOffset }, result.highWatermark),
        );
    this.aheadRead = reading.then(
      () => undefined,
      () => {
        // The read the credit brings will meet the same failure and report it.
        this.aheadRead = null;
        budget.release(grant);
      },
    );
  }

  /** Pushes from what was read ahead, keeping what the credit does not cover. */
  private pushReadAhead(): boolean {
    const ahead = this.ahead!;
    const at = ahead.kind === 'records' ? ahead.records[0]!.offset : ahead.from;
    if (at !== this.nextOffset) {
      this.dropReadAhead();
      return true;
    }
    if (!this.sink.writable) {
      this.park();
      return false;
    }
    if (ahead.kind === 'batches') {
      ahead.sent += this.pushFromBatches(ahead.read, ahead.from);
      ahead.from = this.nextOffset;
      if (ahead.from >= ahead.read.nextOffset) this.dropReadAhead();
      return true;
    }
    if (ahead.kind === 'records') {
      const sent = this.push(ahead.records, ahead.readNextOffset);
      if (sent === ahead.records.length) this.dropReadAhead();
      else if (sent > 0) ahead.records = ahead.records.slice(sent);
      return true;
    }
    const count = this.batchesThatFit(ahead.read, ahead.first);
    if (count === 0) {
      // The next batch needs more credit than there is: the read the credit brings sends the records that fit.
      this.dropReadAhead();
      return true;
    }
    this.pushStored(ahead.read, ahead.first, count);
    ahead.first += count;
    ahead.from = this.nextOffset;
    if (ahead.first === ahead.read.batches.length) this.dropReadAhead();
    return true;
  }

  /** Records read ahead and not yet pushed. */
  private readAheadRecords(): number {
    const ahead = this.ahead;
    if (ahead === null) return 0;
    if (ahead.kind === 'records') return ahead.records.length;
    if (ahead.kind === 'batches') return ahead.read.records - ahead.sent;
    let n = 0;
    for (let i = ahead.first; i < ahead.read.batches.length; i++) n += ahead.read.batchRecords[i]!;
    return n;
  }

  private dropReadAhead(): void {
    const ahead = this.ahead;
    if (ahead === null) return;
    this.ahead = null;
    clearTimeout(ahead.expiry);
    this.readBudget?.release(ahead.grant);
  }
}

/** After a stored read whose first batch did not fit, at least this many reads are of records before batches are tried again… */
const STORED_RETRY_MIN_READS = 16;
/** …and at most this many, however many missed in a row. */
const STORED_RETRY_MAX_READS = 1024;

/** Omit over each member of a union (the built-in Omit merges them). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
