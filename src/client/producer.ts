/**
 * A batching, retrying, optionally idempotent producer.
 *
 * ```
 *  send() ─▶ waiting (callers' own promises) ─▶ open batch ─(full | linger | flush)─▶ in flight ─▶ ack
 *                                               ≤ batchSize                          ≤ maxInflight
 * ```
 *
 * The SDK holds at most one open batch and `maxInflight` unacknowledged ones. When both are full,
 * `send()` returns a promise that stays pending until its record has a place and is durably
 * acknowledged: a caller that awaits its sends (or bounds how many it has outstanding) is slowed
 * to the server's pace and memory stays flat.
 *
 * Ordering: batches are sent in order through the connection's produce gate. A batch that fails
 * with a retriable error (connection lost, RATE_LIMITED, timeout) is resent after a backoff with
 * full jitter, and no newer batch is sent while one waits for its retry, so per-partition order
 * survives retries. Idempotent batches are resent with the same producer id and sequence, so the
 * server recognises an already-appended batch and answers with its original offsets.
 */
import { BINARY_RECORD_FIXED_BYTES, binaryRecordParts, ProduceFrame, STORED_RECORD_EXTRA_BYTES, type BinaryRecordParts } from './binary.js';
import type { Connection } from './connection.js';
import { fullJitter } from './backoff.js';
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_LINGER_MS,
  DEFAULT_MAX_INFLIGHT,
  DEFAULT_PRODUCE_RETRIES,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RETRY_CAP_MS,
  MAX_IDEMPOTENT_INFLIGHT,
  PRODUCE_FRAME_OVERHEAD_BYTES,
} from './defaults.js';
import {
  BrookServerError,
  ClientClosedError,
  InvalidArgumentError,
  MessageTooLargeError,
  ProtocolError,
  isRetriable,
} from './errors.js';
import { deferred, type Deferred } from '../lib/deferred.js';
import { Fifo } from '../lib/fifo.js';
import type { OutgoingRecord, ProducerOptions, RecordMetadata } from './options.js';
import { utf8Length } from './utf8.js';
import type { OffsetRun, ServerLimits } from './wire.js';

/** The engine's per-record overhead in `max_record_bytes` accounting (src/engine/embedded/batch-codec.ts). */
const RECORD_FIXED_BYTES = 22;
/** Frame buffers a producer keeps for reuse (see `spareFrames`). */
const SPARE_FRAMES = 2;
const HEADER_FIXED_BYTES = 6;

/**
 * A record waiting to be sent or acknowledged, built once. Its outcome goes to its own promise
 * (`send`) or to its place in a group (`sendMany`: one promise for many records, no promise and
 * no closures per record — at 1 KB records the SDK's own per-record allocations were the
 * publisher's limit).
 */
class Entry {
  private single: Deferred<RecordMetadata> | null = null;
  private group: SendGroup | null = null;
  private index = 0;

  constructor(
    /**
     * JSON protocol: the record in its wire form, `{"key":…,"value":…,"headers":…}`. Let go
     * (emptied) once its batch is built, like `bin`.
     */
    public json: string,
    /**
     * Binary protocol: the record's encoded parts; null once its batch's frame is encoded. A
     * window of unacknowledged batches kept every record's value alive until its ack, and the
     * young-generation collector copied them all, again and again, while they flew.
     */
    public bin: BinaryRecordParts | null,
    readonly frameBytes: number,
    /** Size as the server counts it against `max_record_bytes`. */
    readonly recordBytes: number,
  ) {}

  /** The record's own promise (for `send`). */
  own(): Promise<RecordMetadata> {
    const d = deferred<RecordMetadata>();
    this.single = d;
    return d.promise;
  }

  join(group: SendGroup, index: number): void {
    this.group = group;
    this.index = index;
  }

  /** What settles with the record (shared by a group's records). */
  get promise(): Promise<unknown> {
    return this.single !== null ? this.single.promise : this.group!.promise;
  }

  resolve(metadata: RecordMetadata): void {
    if (this.single !== null) this.single.resolve(metadata);
    else this.group!.resolve(this.index, metadata);
  }

  reject(err: Error): void {
    if (this.single !== null) this.single.reject(err);
    else this.group!.reject(err);
  }
}

/** The records of one `sendMany`: resolves with every record's metadata, or rejects with the first failure. */
class SendGroup {
  private readonly d = deferred<RecordMetadata[]>();
  private readonly results: RecordMetadata[];
  private remaining: number;
  private settled = false;

  constructor(count: number) {
    this.results = new Array<RecordMetadata>(count);
    this.remaining = count;
  }

  get promise(): Promise<RecordMetadata[]> {
    return this.d.promise;
  }

  resolve(index: number, metadata: RecordMetadata): void {
    if (this.settled) return;
    this.results[index] = metadata;
    if (--this.remaining === 0) {
      this.settled = true;
      this.d.resolve(this.results);
    }
  }

  reject(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.d.reject(err);
  }
}

interface Batch {
  readonly entries: Entry[];
  frameBytes: number;
  recordsJson: string;
  /** Binary protocol: the encoded frame, its request id rewritten per send (rebuilt if the header changes). */
  frame: ProduceFrame | null;
  producerId: string | null;
  sequence: number;
  /** Failures that count against `retries`. */
  failures: number;
  state: 'sending' | 'failed';
  done: boolean;
}

interface Settings {
  readonly topic: string;
  readonly topicJson: string;
  readonly partition: number | undefined;
  readonly idempotent: boolean;
  readonly lingerMs: number;
  readonly batchSize: number;
  readonly maxInflight: number;
  readonly retries: number;
  readonly backoff: { readonly baseMs: number; readonly capMs: number };
}

/**
 * Sends records to one topic. Create with {@link BrookClient.producer}.
 *
 * @example
 * const producer = client.producer<{ item: string }>({ topic: 'orders', partition: 0 });
 * const { offset } = await producer.send({ key: 'u1', value: { item: 'book' } });
 * await producer.close();
 */
export class Producer<T = unknown> {
  private readonly settings: Settings;
  private readonly encode: ((value: T) => unknown) | undefined;
  private readonly waiting = new Fifo<Entry>();
  private open: Batch | null = null;
  private lingerExpired = false;
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Sent and unacknowledged (or waiting for a retry), in the order they were first sent. */
  private readonly inflight: Batch[] = [];
  /**
   * Binary protocol: memory of settled batches' frames, written into by the next batches instead
   * of a new buffer each (a megabyte per 1,000-record 1 KB batch, and the garbage collections
   * that much short-lived memory brings). At most {@link SPARE_FRAMES}.
   */
  private readonly spareFrames: Uint8Array[] = [];
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private producerId: string | null;
  private nextSequence = 0;
  private flushing = 0;
  private awaitingLimits = false;
  private closing = false;
  private closedError: Error | null = null;
  private readonly detach: () => void;

  /** @internal Use {@link BrookClient.producer}. */
  constructor(
    private readonly conn: Connection,
    options: ProducerOptions<T>,
    private readonly onClosed: (producer: Producer<T>) => void,
  ) {
    this.settings = producerSettings(options);
    this.encode = options.encode;
    this.producerId = this.settings.idempotent ? newProducerId() : null;
    this.detach = conn.onClose((err) => this.abort(err));
  }

  get topic(): string {
    return this.settings.topic;
  }

  /**
   * Queues a record and resolves with its partition and offset once the server has durably
   * appended it. Stays pending while the producer's window is full (backpressure). Rejects with
   * INVALID_ARGUMENT or MESSAGE_TOO_LARGE for a record that can never be sent, with the server's
   * error for a non-retriable failure, or with the last error once retries are exhausted.
   */
  send(record: OutgoingRecord<T>): Promise<RecordMetadata> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (this.closing) return Promise.reject(new ClientClosedError('producer'));
    let entry: Entry;
    try {
      entry = this.encodeRecord(record);
    } catch (err) {
      return Promise.reject(err);
    }
    const promise = entry.own();
    this.waiting.push(entry);
    this.pump();
    return promise;
  }

  /**
   * Queues several records in order and resolves with their metadata, in the same order, once
   * all are durably appended: `send` for many records with one promise instead of one each.
   * Nothing is queued if any record is invalid (that record's INVALID_ARGUMENT or
   * MESSAGE_TOO_LARGE rejects it). Rejects with the first failure; the records of other batches
   * may still have been appended, as with separate `send`s.
   */
  sendMany(records: readonly OutgoingRecord<T>[]): Promise<RecordMetadata[]> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (this.closing) return Promise.reject(new ClientClosedError('producer'));
    if (!Array.isArray(records)) return Promise.reject(new InvalidArgumentError('sendMany takes an array of records'));
    if (records.length === 0) return Promise.resolve([]);
    const entries = new Array<Entry>(records.length);
    try {
      for (let i = 0; i < records.length; i++) entries[i] = this.encodeRecord(records[i]!);
    } catch (err) {
      return Promise.reject(err);
    }
    const group = new SendGroup(entries.length);
    for (let i = 0; i < entries.length; i++) {
      entries[i]!.join(group, i);
      this.waiting.push(entries[i]!);
    }
    this.pump();
    return group.promise;
  }

  /** Sends everything queued now, without lingering, and resolves once all of it has settled. */
  async flush(): Promise<void> {
    // A set: the records of one sendMany share a promise.
    const all = new Set<Promise<unknown>>();
    for (const b of this.inflight) for (const e of b.entries) all.add(e.promise);
    if (this.open !== null) for (const e of this.open.entries) all.add(e.promise);
    for (const e of this.waiting) all.add(e.promise);
    if (all.size === 0) return;
    this.flushing++;
    try {
      this.pump();
      await Promise.allSettled(all);
    } finally {
      this.flushing--;
    }
  }

  /** Refuses new records, flushes the queued ones and releases the producer. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    await this.flush();
    this.abort(new ClientClosedError('producer'));
  }

  /** @internal Fails everything not yet acknowledged (client closed or connection failed for good). */
  abort(err: Error): void {
    if (this.closedError !== null) return;
    this.closedError = err;
    clearTimeout(this.lingerTimer);
    clearTimeout(this.retryTimer);
    for (let e = this.waiting.shift(); e !== undefined; e = this.waiting.shift()) e.reject(err);
    if (this.open !== null) for (const e of this.open.entries) e.reject(err);
    this.open = null;
    for (const b of this.inflight.splice(0)) this.fail(b, err);
    this.detach();
    this.onClosed(this);
  }

  // ── batching ──────────────────────────────────────────────────────────────────────────────

  private pump(): void {
    if (this.closedError !== null) return;
    const limits = this.conn.limits;
    if (limits === null) {
      this.waitForLimits();
      return;
    }
    const maxRecords = Math.max(1, Math.min(this.settings.batchSize, limits.maxBatchRecords));
    const maxBytes = maxBatchBytes(limits, this.settings.topicJson);
    for (;;) {
      let full = false;
      for (let e = this.waiting.peek(); e !== undefined; e = this.waiting.peek()) {
        if (e.recordBytes > limits.maxRecordBytes || e.frameBytes > maxBytes) {
          this.waiting.shift();
          e.reject(new MessageTooLargeError(Math.max(e.recordBytes, e.frameBytes), Math.min(limits.maxRecordBytes, maxBytes)));
          continue;
        }
        const open = (this.open ??= newBatch());
        if (open.entries.length >= maxRecords || (open.entries.length > 0 && open.frameBytes + e.frameBytes > maxBytes)) {
          full = true;
          break;
        }
        this.waiting.shift();
        open.entries.push(e);
        open.frameBytes += e.frameBytes;
        if (open.entries.length === 1 && this.settings.lingerMs > 0) {
          this.lingerTimer = setTimeout(() => {
            this.lingerTimer = undefined;
            this.lingerExpired = true;
            this.pump();
          }, this.settings.lingerMs);
        }
      }
      const open = this.open;
      if (open === null || open.entries.length === 0) return;
      full ||= open.entries.length >= maxRecords;
      const due = full || this.lingerExpired || this.flushing > 0 || this.settings.lingerMs === 0;
      if (!due || !this.canDispatch()) return;
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
      this.lingerExpired = false;
      this.open = null;
      this.dispatch(open);
    }
  }

  /** Room in the window, and nothing older waiting for a retry (order must survive retries). */
  private canDispatch(): boolean {
    if (this.inflight.length >= this.window()) return false;
    for (const b of this.inflight) {
      if (b.state === 'failed') return false;
      if (this.settings.idempotent && b.producerId !== this.producerId) return false;
    }
    return true;
  }

  /** `maxInflight`, and for an idempotent producer no more than the server remembers per producer. */
  private window(): number {
    const max = this.settings.maxInflight;
    return this.settings.idempotent ? Math.min(max, this.conn.limits?.producerBatches ?? max) : max;
  }

  private waitForLimits(): void {
    if (this.awaitingLimits) return;
    this.awaitingLimits = true;
    this.conn.ready().then(
      () => {
        this.awaitingLimits = false;
        this.pump();
      },
      (err: unknown) => this.abort(err instanceof Error ? err : new ClientClosedError()),
    );
  }

  private dispatch(batch: Batch): void {
    if (this.settings.idempotent) this.assignSequence(batch);
    if (!this.conn.binary) {
      batch.recordsJson = batch.entries.map((e) => e.json).join(',');
      for (const e of batch.entries) e.json = '';
    }
    this.inflight.push(batch);
    this.transmit(batch);
  }

  /** The produce frame's members after `"id"`: the same for every send of a batch (retries too). */
  private headerFields(batch: Batch): string {
    const s = this.settings;
    const partition = s.partition === undefined ? '' : `,"partition":${s.partition}`;
    const producer =
      batch.producerId === null ? '' : `,"producer":{"id":${JSON.stringify(batch.producerId)},"sequence":${batch.sequence}}`;
    // compact_ack: the reply names a run of offsets, not one object per record (a 1,000-record
    // batch's reply was 32 KB of JSON for the SDK to parse). Only where the server offers it.
    const compact = this.conn.limits?.compactAck === true ? ',"compact_ack":true' : '';
    return `,"topic":${s.topicJson}${partition}${producer}${compact}`;
  }

  private assignSequence(batch: Batch): void {
    batch.producerId = this.producerId;
    batch.sequence = this.nextSequence;
    this.nextSequence += batch.entries.length;
  }

  private transmit(batch: Batch): void {
    batch.state = 'sending';
    // Computed per send: a retry may go out under a fresh producer id and sequence (see
    // onFailed) or to a server without compact_ack, so the header may differ from the last send.
    const fields = this.headerFields(batch);
    let build: (id: number) => string | Uint8Array;
    if (this.conn.binary) {
      // Encoded on the first send and reused by retries; its header room fits only the fields it
      // was built with, so a retry under other fields copies the records behind a new header.
      const stored = this.storedLayout();
      if (batch.frame === null) batch.frame = this.binaryFrame(batch, fields, stored);
      else if (batch.frame.fields !== fields || (batch.frame.stored !== undefined && !stored)) {
        const old = batch.frame;
        batch.frame = stored ? old.withFields(fields, this.spareFrames.pop(), batch.producerId) : old.asKind01(fields, this.spareFrames.pop());
        this.recycleStorage(old.storage);
      }
      const frame = batch.frame;
      build = (id) => frame.withId(id);
    } else build = (id) => `{"type":"produce","id":${id}${fields},"records":[${batch.recordsJson}]}`;
    this.conn.produce(build).then(
      (reply) => this.onAcked(batch, reply.offsets),
      (err: unknown) => this.onFailed(batch, err instanceof Error ? err : new ProtocolError(String(err))),
    );
  }

  /**
   * Kind 0x05 (records as one batch in the server's stored layout, which it stores without
   * re-encoding) where the server offers `stored_produce` and the partition is explicit.
   */
  private storedLayout(): boolean {
    return this.conn.limits?.storedProduce === true && this.settings.partition !== undefined;
  }

  private binaryFrame(batch: Batch, fields: string, stored: boolean): ProduceFrame {
    const n = batch.entries.length;
    const frame = new ProduceFrame(
      fields,
      batch.entries.map((e) => e.bin!),
      stored ? batch.frameBytes : batch.frameBytes - STORED_RECORD_EXTRA_BYTES * n,
      this.spareFrames.pop(),
      stored ? { producerId: batch.producerId } : undefined,
    );
    for (const e of batch.entries) e.bin = null;
    return frame;
  }

  /**
   * A settled batch's frame memory goes back for the next batches. Only once settled: a retry
   * resends the frame as it is; each send is copied by the WebSocket (to mask it) before
   * `send` returns, so nothing else holds it.
   */
  private recycleFrame(batch: Batch): void {
    const frame = batch.frame;
    batch.frame = null;
    if (frame !== null) this.recycleStorage(frame.storage);
  }

  private recycleStorage(storage: Uint8Array): void {
    if (this.spareFrames.length < SPARE_FRAMES) this.spareFrames.push(storage);
  }

  private onAcked(batch: Batch, offsets: readonly RecordMetadata[] | OffsetRun): void {
    if (batch.done) return;
    this.remove(batch);
    const count = 'count' in offsets ? offsets.count : offsets.length;
    if (count !== batch.entries.length) {
      this.fail(batch, new ProtocolError(`${count} offsets for a batch of ${batch.entries.length} records`));
    } else {
      batch.done = true;
      this.recycleFrame(batch);
      const entries = batch.entries;
      if ('count' in offsets) {
        for (let i = 0; i < count; i++) entries[i]!.resolve({ partition: offsets.partition, offset: offsets.base + i });
      } else {
        for (let i = 0; i < count; i++) entries[i]!.resolve(offsets[i]!);
      }
    }
    this.pump();
  }

  private onFailed(batch: Batch, err: Error): void {
    if (batch.done) return;
    const s = this.settings;
    // OUT_OF_ORDER_SEQUENCE is expected for a batch sent behind one that failed (or under a
    // producer id that was replaced): it was not appended, and resending it after the earlier
    // batch settles succeeds. Such knock-on failures do not count against `retries`.
    const knockOn =
      s.idempotent &&
      err instanceof BrookServerError &&
      err.code === 'OUT_OF_ORDER_SEQUENCE' &&
      (this.inflight.indexOf(batch) > 0 || batch.producerId !== this.producerId);
    if (!knockOn) batch.failures++;
    if ((knockOn || isRetriable(err)) && batch.failures <= s.retries && this.closedError === null) {
      batch.state = 'failed';
      this.scheduleRetry(batch.failures);
      return;
    }
    this.remove(batch);
    this.fail(batch, err);
    // The server's next expected sequence is unknown now: continue under a fresh producer id.
    // Batches already sent under the old one are renumbered when resent (see canDispatch).
    if (s.idempotent) {
      this.producerId = newProducerId();
      this.nextSequence = 0;
    }
    this.pump();
  }

  private scheduleRetry(failures: number): void {
    if (this.retryTimer !== undefined) return;
    const delay = fullJitter(Math.max(0, failures - 1), this.settings.backoff);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const b of this.inflight) {
        if (b.state !== 'failed') continue;
        if (this.settings.idempotent && b.producerId !== this.producerId) this.assignSequence(b);
        this.transmit(b);
      }
      this.pump();
    }, delay);
  }

  private remove(batch: Batch): void {
    const i = this.inflight.indexOf(batch);
    if (i >= 0) this.inflight.splice(i, 1);
  }

  private fail(batch: Batch, err: Error): void {
    if (batch.done) return;
    batch.done = true;
    this.recycleFrame(batch);
    for (const e of batch.entries) e.reject(err);
  }

  /** The record's wire form and sizes, as an entry with its own promise; throws for a record that can never be sent. */
  private encodeRecord(record: OutgoingRecord<T>): Entry {
    if (typeof record !== 'object' || record === null) {
      throw new InvalidArgumentError('a record is an object { key?, value, headers? }');
    }
    const { key, value, headers } = record;
    if (value === undefined) throw new InvalidArgumentError('record.value is required (null is a tombstone)');
    if (key !== undefined && key !== null && typeof key !== 'string') {
      throw new InvalidArgumentError(`record.key must be a string or null, got ${typeof key}`);
    }
    if (headers !== undefined) {
      if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
        throw new InvalidArgumentError('record.headers must be an object of string values');
      }
      for (const [name, v] of Object.entries(headers)) {
        if (typeof v !== 'string') throw new InvalidArgumentError(`header ${JSON.stringify(name)} must be a string, got ${typeof v}`);
      }
    }
    // Binary: binaryRecordParts measures key and headers itself.
    if (this.conn.binary) return this.encodeBinary(key ?? null, value, headers);
    let recordBytes = RECORD_FIXED_BYTES + (typeof key === 'string' ? utf8Length(key) : 0);
    let headersJson = '';
    if (headers !== undefined) {
      for (const [name, v] of Object.entries(headers)) recordBytes += HEADER_FIXED_BYTES + utf8Length(name) + utf8Length(v);
      headersJson = `,"headers":${JSON.stringify(headers)}`;
    }
    if (value instanceof Uint8Array) {
      throw new InvalidArgumentError("a Uint8Array value needs the binary protocol (ClientOptions.protocol: 'binary')");
    }
    let data: unknown;
    let valueJson: string | undefined;
    try {
      data = this.encode === undefined ? value : this.encode(value);
      valueJson = JSON.stringify(data);
    } catch (err) {
      throw new InvalidArgumentError('record.value cannot be encoded as JSON', { cause: err });
    }
    if (valueJson === undefined) {
      throw new InvalidArgumentError('record.value cannot be encoded as JSON (undefined, a function or a symbol)');
    }
    if (data !== null) recordBytes += utf8Length(valueJson);
    const keyJson = typeof key === 'string' ? `"key":${JSON.stringify(key)},` : '';
    const json = `{${keyJson}"value":${valueJson}${headersJson}}`;
    // +1 for the comma between records.
    return new Entry(json, null, utf8Length(json) + 1, recordBytes);
  }

  /**
   * Binary protocol: a Uint8Array value is sent as it is; anything else as the UTF-8 of its JSON
   * text (stringified once, encoded into the frame when the batch is cut), so JSON readers see
   * it as JSON.
   */
  private encodeBinary(key: string | null, value: T, headers: Readonly<Record<string, string>> | undefined): Entry {
    let encoded: Uint8Array | string | null;
    if (value instanceof Uint8Array && this.encode === undefined) encoded = value;
    else {
      let data: unknown;
      let json: string | undefined;
      try {
        data = this.encode === undefined ? value : this.encode(value);
        json = data instanceof Uint8Array ? undefined : JSON.stringify(data);
      } catch (err) {
        throw new InvalidArgumentError('record.value cannot be encoded as JSON', { cause: err });
      }
      if (data instanceof Uint8Array) encoded = data;
      else if (json === undefined) throw new InvalidArgumentError('record.value cannot be encoded as JSON (undefined, a function or a symbol)');
      else encoded = data === null ? null : json; // written into the frame as UTF-8
    }
    const parts = binaryRecordParts(key, encoded, headers);
    // The engine's fixed overhead (22) and the frame's (10) differ; both count key, value and headers alike.
    // Counted at its size in a stored batch (kind 0x05), the larger layout, so a batch cut to the
    // frame bound fits in either (the layout is chosen when the frame is built).
    return new Entry('', parts, parts.size + STORED_RECORD_EXTRA_BYTES, parts.size - BINARY_RECORD_FIXED_BYTES + RECORD_FIXED_BYTES);
  }
}

function newBatch(): Batch {
  return { entries: [], frameBytes: 0, recordsJson: '', frame: null, producerId: null, sequence: 0, failures: 0, state: 'sending', done: false };
}

function maxBatchBytes(limits: ServerLimits, topicJson: string): number {
  return Math.max(1, limits.maxFrameBytes - PRODUCE_FRAME_OVERHEAD_BYTES - utf8Length(topicJson));
}

function producerSettings<T>(o: ProducerOptions<T>): Settings {
  if (typeof o.topic !== 'string' || o.topic === '') throw new InvalidArgumentError('producer needs a topic');
  if (o.partition !== undefined && !isCount(o.partition, 0)) {
    throw new InvalidArgumentError(`partition must be a non-negative integer, got ${String(o.partition)}`);
  }
  const idempotent = o.idempotent ?? o.partition !== undefined;
  if (idempotent && o.partition === undefined) {
    throw new InvalidArgumentError('an idempotent producer needs a partition (the server numbers batches per partition)');
  }
  const lingerMs = o.lingerMs ?? DEFAULT_LINGER_MS;
  if (!(lingerMs >= 0)) throw new InvalidArgumentError(`lingerMs must be >= 0, got ${lingerMs}`);
  const batchSize = o.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!isCount(batchSize, 1)) throw new InvalidArgumentError(`batchSize must be a positive integer, got ${batchSize}`);
  const maxInflight = o.maxInflight ?? DEFAULT_MAX_INFLIGHT;
  if (!isCount(maxInflight, 1)) throw new InvalidArgumentError(`maxInflight must be a positive integer, got ${maxInflight}`);
  if (idempotent && maxInflight > MAX_IDEMPOTENT_INFLIGHT) {
    throw new InvalidArgumentError(
      `an idempotent producer allows at most ${MAX_IDEMPOTENT_INFLIGHT} batches in flight (the server remembers ${MAX_IDEMPOTENT_INFLIGHT} per producer)`,
    );
  }
  const retries = o.retries ?? DEFAULT_PRODUCE_RETRIES;
  if (!(retries >= 0)) throw new InvalidArgumentError(`retries must be >= 0, got ${retries}`);
  return {
    topic: o.topic,
    topicJson: JSON.stringify(o.topic),
    partition: o.partition,
    idempotent,
    lingerMs,
    batchSize,
    maxInflight,
    retries,
    backoff: { baseMs: o.retryBackoff?.baseMs ?? DEFAULT_RETRY_BASE_MS, capMs: o.retryBackoff?.capMs ?? DEFAULT_RETRY_CAP_MS },
  };
}

function isCount(n: unknown, min: number): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= min;
}

/** 128 random bits: unique per producer instance, so sequences never collide across restarts. */
function newProducerId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let hex = 'p-';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}
