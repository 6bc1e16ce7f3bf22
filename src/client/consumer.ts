/**
 * A credit-based consumer: one partition, or a consumer-group member, read as an async iterator.
 *
 * Memory: the server pushes at most the granted window (records and bytes) per subscribed
 * partition, and the SDK returns credit only as the application takes records out of the buffer,
 * so the buffer never holds more than the window per partition.
 *
 * Positions, per partition (offsets are "the next offset to read"):
 *
 * ```
 *   processed ≤ delivered ≤ received
 *   │           │           └ past the last record that arrived (the buffer holds delivered..received)
 *   │           └ past the last record handed to the application (manual commit() commits this)
 *   └ past the last record the application finished: it asked for the next one (auto-commit)
 * ```
 *
 * After a reconnect the buffer is dropped and reading resumes at `delivered`: a plain
 * subscription resubscribes from that offset; a group member rejoins, the server restarts its
 * partitions at the committed offsets, and records below `delivered` are skipped, so neither
 * loses nor repeats a record the application has seen (a partition that moved to another member
 * meanwhile is read there from its committed offset: at-least-once).
 */
import { fullJitter } from './backoff.js';
import { groupSubPrefix, type Connection } from './connection.js';
import {
  DEFAULT_AUTO_COMMIT_INTERVAL_MS,
  DEFAULT_CREDIT_BYTES,
  DEFAULT_CREDIT_RECORDS,
  DEFAULT_RETRY_BASE_MS,
  DEFAULT_RETRY_CAP_MS,
  IDLE_CREDIT_RETURN_MS,
} from './defaults.js';
import {
  BrookClientError,
  BrookServerError,
  ClientClosedError,
  ConnectionLostError,
  DecodeError,
  InvalidArgumentError,
  toError,
} from './errors.js';
import { deferred, type Deferred } from '../lib/deferred.js';
import { Fifo } from '../lib/fifo.js';
import type { ConsumedRecord, ConsumerOptions } from './options.js';
import { utf8Length } from './utf8.js';
import type { AssignmentFrame, Credits, RecordsFrame, StartPosition, TopicPartition, WireRecord } from './wire.js';

type Mode = 'partition' | 'standalone' | 'member';

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** The subscription id on the wire (a plain consumer's changes on seek). */
  sub: string;
  received: number | null;
  delivered: number | null;
  processed: number | null;
  committed: number | null;
  /** Between sending a seek and its reply: records still arriving are from the old position. */
  seeking: boolean;
  /** Credit used by records taken out of the buffer (or skipped) and not yet returned. */
  returnRecords: number;
  returnBytes: number;
  live: boolean;
  /** A member's partition was passed to `onAssigned` (records may arrive before the assignment that lists it). */
  announced: boolean;
}

interface Buffered {
  readonly state: PartitionState;
  readonly record: WireRecord;
  readonly bytes: number;
}

/**
 * Reads records; create with {@link BrookClient.consumer}.
 *
 * @example
 * const consumer = client.consumer<{ item: string }>({ topic: 'orders', group: 'billing' });
 * for await (const record of consumer) {
 *   await bill(record.value);
 * }
 */
export class Consumer<T = unknown> implements AsyncIterableIterator<ConsumedRecord<T>> {
  private readonly mode: Mode;
  private readonly topic: string;
  private readonly group: string | undefined;
  private readonly from: StartPosition;
  private readonly autoCommit: boolean;
  private readonly window: { records: number; bytes: number | undefined };
  private readonly buffer = new Fifo<Buffered>();
  /** Partitions read now: one for plain and standalone consumers, the assignment for members. */
  private readonly partitions = new Map<number, PartitionState>();
  /**
   * A member's `delivered` of partitions it lost, so a partition that comes back (typically
   * right after a reconnect, once the server noticed the old connection is gone) skips what the
   * application already saw. Bounded by the topic's partition count.
   */
  private readonly lostPositions = new Map<number, number>();
  private current: Buffered | null = null;
  /** The last record of each partition in the batch `nextBatch` handed out last. */
  private currentBatch: Buffered[] | null = null;

  private epoch = 0;
  private memberId: string | null = null;
  private generationValue = -1;
  private heartbeatMs = 3000;
  private heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  /** A subscribe or join refused with a retriable error waits here for its next attempt. */
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryAttempt = 0;
  private commitTimer: ReturnType<typeof setTimeout> | undefined;
  /** Returns all used credit once the application has waited on an empty buffer for a while. */
  private idleCreditTimer: ReturnType<typeof setTimeout> | undefined;

  private wake: Deferred<void> = deferred();
  private failure: Error | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly firstReady = deferred();
  private readonly detach: (() => void)[] = [];
  private unroute: () => void = () => undefined;
  private handlers: { records(f: RecordsFrame): void; failed(err: Error): void } | null = null;

  /** @internal Use {@link BrookClient.consumer}. */
  constructor(
    private readonly conn: Connection,
    private readonly options: ConsumerOptions<T>,
    private readonly subId: () => string,
    private readonly onClosed: (consumer: Consumer<T>) => void,
  ) {
    const o = options;
    if (typeof o.topic !== 'string' || o.topic === '') throw new InvalidArgumentError('consumer needs a topic');
    if (o.partition !== undefined && !(Number.isSafeInteger(o.partition) && o.partition >= 0)) {
      throw new InvalidArgumentError(`partition must be a non-negative integer, got ${String(o.partition)}`);
    }
    if (o.group !== undefined && (typeof o.group !== 'string' || o.group === '')) {
      throw new InvalidArgumentError('group must be a non-empty string');
    }
    this.topic = o.topic;
    this.group = o.group;
    this.mode = o.group === undefined ? 'partition' : o.partition === undefined ? 'member' : 'standalone';
    if (this.mode === 'member' && o.from !== undefined) {
      throw new InvalidArgumentError('a group member starts at the group\'s committed offsets; `from` needs `partition`');
    }
    if (this.mode === 'member' && conn.hasGroup(o.group!)) {
      throw new InvalidArgumentError(`this client already has a consumer in group ${JSON.stringify(o.group)}; use one client per member`);
    }
    this.from = o.from ?? (this.mode === 'standalone' ? { group: o.group! } : 'earliest');
    this.autoCommit = o.autoCommit ?? true;
    const c = typeof o.credits === 'number' ? { records: o.credits } : (o.credits ?? {});
    const records = c.records ?? DEFAULT_CREDIT_RECORDS;
    if (!(Number.isSafeInteger(records) && records >= 1)) throw new InvalidArgumentError(`credits.records must be a positive integer, got ${records}`);
    if (c.bytes !== undefined && !(Number.isSafeInteger(c.bytes) && c.bytes >= 1)) {
      throw new InvalidArgumentError(`credits.bytes must be a positive integer, got ${c.bytes}`);
    }
    this.window = { records, bytes: c.bytes };
    // A failure before the first record is also reported by next(); this keeps ready() optional.
    this.firstReady.promise.catch(() => undefined);

    const handlers = {
      records: (f: RecordsFrame) => this.onRecords(f),
      // The server stopped pushing after a failed read (e.g. OFFSET_OUT_OF_RANGE once retention
      // removed the position): the application decides what to do, so the iterator throws it.
      failed: (err: Error) => this.fail(err),
    };
    if (this.mode === 'member') {
      this.detach.push(
        conn.routeGroup(this.group!, {
          ...handlers,
          assignment: (f) => this.onPushedAssignment(f),
          ended: () => this.rejoin(),
        }),
      );
    } else {
      const partition = o.partition ?? 0;
      const st = newState(this.topic, partition, this.subId());
      this.partitions.set(partition, st);
      this.unroute = conn.route(st.sub, handlers);
      this.detach.push(() => this.unroute());
      this.handlers = handlers;
    }
    this.detach.push(conn.onOpen(() => this.establish()));
    this.detach.push(
      conn.onClose((err) => {
        // The connection is gone for good: report why (once, from next()) and stop.
        this.fail(err);
        void this.close();
      }),
    );
    if (conn.isOpen) this.establish();
    else conn.ready().catch((err: unknown) => this.fail(toError(err)));
    if (this.mode === 'standalone' && this.autoCommit) this.scheduleIntervalCommit();
  }

  /** Resolves once the first subscription (or group join) is in place. */
  ready(): Promise<void> {
    return this.firstReady.promise;
  }

  /** Partitions this consumer reads now (a member's current assignment). */
  get assignment(): TopicPartition[] {
    return [...this.partitions.values()].filter((s) => s.live).map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** Records received and not yet handed to the application (at most the window per partition). */
  get buffered(): number {
    return this.buffer.length;
  }

  /** The member's generation, or -1 before it joined (and for non-members). */
  get generation(): number {
    return this.generationValue;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * The next record, waiting for one when none is buffered. Rejects with the error that ended
   * the consumer (e.g. TOPIC_NOT_FOUND, OFFSET_OUT_OF_RANGE after retention removed the records
   * to resume from) once; after that the iteration is done.
   */
  async next(): Promise<IteratorResult<ConsumedRecord<T>, undefined>> {
    this.markProcessed();
    if (!this.recordReady() && !(await this.waitForRecords())) return { done: true, value: undefined };
    const entry = this.buffer.shift()!;
    this.handOut(entry);
    this.grant(entry.state, false);
    this.current = entry;
    return { done: false, value: this.decode(entry) };
  }

  /**
   * Up to `max` buffered records at once, waiting for the first when none is buffered: `next()`
   * for many records under one promise (each partition's records in order). The records of the
   * previous batch count as processed when this is called again, as the previous record does for
   * `next()`. An empty array means the consumer is closed. Rejects like `next()`; a record whose
   * `decode` throws ends the batch before it and is reported by the next call.
   */
  async nextBatch(max = 1000): Promise<ConsumedRecord<T>[]> {
    if (!Number.isSafeInteger(max) || max < 1) throw new InvalidArgumentError(`max must be a positive integer, got ${String(max)}`);
    this.markProcessed();
    return this.recordReady() || (await this.waitForRecords()) ? this.takeBatch(max) : [];
  }

  /** A record can be handed out without waiting (no await on the hot path). */
  private recordReady(): boolean {
    return this.failure === null && !this.closed && this.buffer.length > 0;
  }

  /**
   * Waits until a record is buffered (true) or the consumer is closed (false); throws, once, the
   * error that ended the consumer.
   */
  private async waitForRecords(): Promise<boolean> {
    for (;;) {
      if (this.failure !== null) {
        const err = this.failure;
        this.failure = null;
        void this.close();
        throw err;
      }
      if (this.closed) return false;
      if (this.buffer.length > 0) return true;
      // Nothing buffered and the application is waiting. The server still holds at least half
      // the window (used credit goes back in halves), so it can go on pushing without a credit
      // frame per push; what is held back goes back after a short idle wait, for a record
      // larger than the byte credit the server has left.
      for (const st of this.partitions.values()) this.grant(st, false);
      this.armIdleCreditReturn();
      await this.wake.promise;
    }
  }

  private armIdleCreditReturn(): void {
    if (this.idleCreditTimer !== undefined) return;
    this.idleCreditTimer = setTimeout(() => {
      this.idleCreditTimer = undefined;
      if (this.closed || this.buffer.length > 0) return;
      for (const st of this.partitions.values()) this.grant(st, true);
    }, IDLE_CREDIT_RETURN_MS);
  }

  private takeBatch(max: number): ConsumedRecord<T>[] {
    const out: ConsumedRecord<T>[] = [];
    const lasts = new Map<PartitionState, Buffered>();
    for (let entry = this.buffer.peek(); entry !== undefined && out.length < max; entry = this.buffer.peek()) {
      let record: ConsumedRecord<T>;
      try {
        record = this.decode(entry);
      } catch (err) {
        if (out.length > 0) break; // reported by the next call, with this record first in line
        this.buffer.shift();
        this.handOut(entry);
        this.current = entry;
        throw err;
      }
      this.buffer.shift();
      this.handOut(entry);
      lasts.set(entry.state, entry);
      out.push(record);
    }
    for (const st of lasts.keys()) this.grant(st, false);
    this.currentBatch = [...lasts.values()];
    return out;
  }

  /** Counts a record as delivered to the application (credit to return, resume position). */
  private handOut(entry: Buffered): void {
    const st = entry.state;
    st.delivered = entry.record.offset + 1;
    st.returnRecords += 1;
    st.returnBytes += entry.bytes;
  }

  /** Ends a `for await` loop: closes the consumer (see {@link close}). */
  async return(): Promise<IteratorResult<ConsumedRecord<T>, undefined>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /**
   * Commits every record handed out so far, including the one being processed: the group
   * resumes after it. For group members and standalone consumers only.
   */
  async commit(): Promise<void> {
    if (this.group === undefined) throw new InvalidArgumentError('commit() needs a consumer created with a group');
    await this.commitPositions([...this.partitions.values()], 'delivered');
  }

  /**
   * Moves a partition's position: records buffered for it are dropped and reading continues at
   * `position` (an offset, or any start position). `partition` may be left out when the
   * consumer reads one partition.
   */
  async seek(position: number | StartPosition, partition?: number): Promise<void> {
    const st = this.partitionFor(partition);
    const from: StartPosition = typeof position === 'number' ? { offset: position } : position;
    if (typeof position === 'number' && !(Number.isSafeInteger(position) && position >= 0)) {
      throw new InvalidArgumentError(`offset must be a non-negative integer, got ${position}`);
    }
    if (!this.conn.isOpen) {
      // No subscription to move right now. An offset is simply where the resubscription after
      // the reconnect starts; anything else needs the server to resolve it.
      if (typeof position !== 'number' || this.mode === 'member') {
        throw new ConnectionLostError('not connected: seek again once reconnected (or seek to an offset)');
      }
      this.buffer.removeWhere((b) => b.state === st);
      this.moveTo(st, position);
      return;
    }
    if (this.mode !== 'member') {
      await this.resubscribe(st, from);
      return;
    }
    st.seeking = true;
    this.dropBuffered(st, true);
    try {
      const reply = await this.conn.request({ type: 'seek', sub: st.sub, from }, 'subscribed');
      this.moveTo(st, reply.offset);
    } finally {
      st.seeking = false;
    }
  }

  /**
   * Seek for a plain or standalone consumer: a new subscription under a new id. The server's
   * `seek` restarts pushing before its reply is sent, so records of the new position can
   * overtake the reply; a new subscription starts pushing only after its `subscribed`, and
   * late records of the old one no longer match the id.
   */
  private async resubscribe(st: PartitionState, from: StartPosition): Promise<void> {
    const old = st.sub;
    st.sub = this.subId();
    this.unroute();
    this.unroute = this.conn.route(st.sub, this.handlers!);
    this.buffer.removeWhere((b) => b.state === st);
    st.returnRecords = 0;
    st.returnBytes = 0;
    st.received = null; // no filtering: every record of the new subscription is new
    const epoch = this.epoch;
    const unsubscribed = this.conn.request({ type: 'unsubscribe', sub: old }, 'unsubscribed').catch((err: unknown) => {
      // Already gone (never subscribed, or the connection dropped): nothing to undo.
      if (!(err instanceof BrookClientError && (err.code === 'SUBSCRIPTION_NOT_FOUND' || err.code === 'CONNECTION_LOST'))) throw err;
    });
    const reply = await this.conn.request(
      { type: 'subscribe', sub: st.sub, topic: st.topic, partition: st.partition, from, credits: this.credits(), ...this.storedBatches() },
      'subscribed',
    );
    // Before any record of the new subscription is handled (those arrive in later messages).
    if (epoch === this.epoch) this.moveTo(st, reply.offset);
    await unsubscribed;
  }

  /**
   * Stops reading: a member commits what it processed (with autoCommit) and leaves its group so
   * its partitions move at once; a plain consumer unsubscribes. Pending `next()` calls end the
   * iteration. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** @internal Ends the consumer with `err`, which next() throws once (CLIENT_CLOSED just ends it). */
  fail(err: Error): void {
    if (this.closed) return;
    if (!(err instanceof ClientClosedError)) this.failure ??= err;
    this.firstReady.reject(err);
    this.notify();
  }

  // ── server side state ─────────────────────────────────────────────────────────────────────

  /** Creates the subscription or membership on the current connection (first open and every reconnect). */
  private establish(): void {
    if (this.closed) return;
    const epoch = ++this.epoch;
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // The previous connection's subscriptions are gone with it; so is their credit.
    this.buffer.clear();
    for (const st of this.partitions.values()) {
      st.received = st.delivered;
      st.returnRecords = 0;
      st.returnBytes = 0;
      st.seeking = false;
    }
    const run = this.mode === 'member' ? this.join(epoch) : this.subscribe(epoch);
    run.then(
      () => {
        if (epoch !== this.epoch) return;
        this.retryAttempt = 0;
        this.firstReady.resolve();
      },
      (err: unknown) => {
        if (epoch !== this.epoch || this.closed) return;
        // Lost with the connection: the next welcome runs establish() again.
        if (err instanceof BrookClientError && err.code === 'CONNECTION_LOST') return;
        if (err instanceof BrookClientError && err.retriable) {
          // E.g. COORDINATOR_NOT_AVAILABLE while a cluster elects a new group coordinator.
          const delay = fullJitter(this.retryAttempt++, { baseMs: DEFAULT_RETRY_BASE_MS, capMs: DEFAULT_RETRY_CAP_MS });
          this.retryTimer = setTimeout(() => {
            if (epoch === this.epoch && this.conn.isOpen) this.establish();
          }, delay);
          return;
        }
        this.fail(toError(err));
      },
    );
  }

  /** `stored_batches` when asked for (ConsumerOptions.storedBatches) and the server offers it on this connection. */
  private storedBatches(): { stored_batches?: true } {
    return this.options.storedBatches === true && this.conn.binary && this.conn.limits?.storedBatches === true ? { stored_batches: true } : {};
  }

  private credits(): Credits {
    const limits = this.conn.limits;
    const bytes = this.window.bytes ?? Math.max(DEFAULT_CREDIT_BYTES, 2 * (limits?.maxRecordBytes ?? 0));
    return { records: this.window.records, bytes };
  }

  private async subscribe(epoch: number): Promise<void> {
    const st = this.partitions.values().next().value!;
    const from: StartPosition = st.delivered === null ? this.from : { offset: st.delivered };
    // Live before the request: records may follow the reply closely.
    st.live = true;
    const reply = await this.conn.request(
      { type: 'subscribe', sub: st.sub, topic: this.topic, partition: st.partition, from, credits: this.credits(), ...this.storedBatches() },
      'subscribed',
    );
    if (epoch !== this.epoch || st.delivered !== null) return;
    st.delivered = reply.offset;
    st.processed = reply.offset;
    if (st.received === null || st.received < reply.offset) st.received = reply.offset;
  }

  private async join(epoch: number): Promise<void> {
    const o = this.options;
    const reply = await this.conn.request(
      {
        type: 'join',
        group: this.group!,
        topics: [this.topic],
        ...(o.strategy === undefined ? {} : { strategy: o.strategy }),
        ...(o.sessionTimeoutMs === undefined ? {} : { session_timeout_ms: o.sessionTimeoutMs }),
        credits: this.credits(),
        ...this.storedBatches(),
      },
      'joined',
    );
    if (epoch !== this.epoch) return;
    this.memberId = reply.memberId;
    this.heartbeatMs = Math.max(1, reply.heartbeatIntervalMs);
    // Partitions kept across the rejoin keep their positions (records below `delivered` are
    // skipped); the others were lost while disconnected.
    await this.applyAssignment(reply.generation, reply.assignment, [], epoch, false);
    if (epoch !== this.epoch) return;
    if (this.autoCommit) await this.commitQuietly(this.owned(), 'processed');
    this.scheduleHeartbeat(epoch);
  }

  private scheduleHeartbeat(epoch: number): void {
    if (this.closed || epoch !== this.epoch) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(epoch), this.heartbeatMs);
  }

  private async heartbeat(epoch: number): Promise<void> {
    if (this.closed || epoch !== this.epoch) return;
    try {
      // Committing before every heartbeat is what lets a revoked partition move safely: the
      // heartbeat releases it (docs/engines.md, consumer-group protocol).
      if (this.autoCommit) await this.commitQuietly(this.owned(), 'processed');
      const a = await this.conn.request({ type: 'heartbeat', group: this.group! }, 'assignment');
      await this.onAssignment(a, epoch);
    } catch (err) {
      if (this.closed || epoch !== this.epoch) return;
      if (err instanceof BrookClientError && err.code === 'CONNECTION_LOST') return; // rejoin on welcome
      if (err instanceof BrookServerError && (err.code === 'UNKNOWN_MEMBER' || err.code === 'STALE_GENERATION')) {
        this.rejoin();
        return;
      }
      this.conn.report(toError(err));
    }
    this.scheduleHeartbeat(epoch);
  }

  private onPushedAssignment(a: AssignmentFrame): void {
    this.onAssignment(a, this.epoch).catch((err: unknown) => this.conn.report(toError(err)));
  }

  private async onAssignment(a: AssignmentFrame, epoch: number): Promise<void> {
    if (epoch !== this.epoch || this.closed) return;
    await this.applyAssignment(a.generation, a.assignment, a.revoked, epoch, true);
  }

  private async applyAssignment(
    generation: number,
    assignment: readonly TopicPartition[],
    revoked: readonly TopicPartition[],
    epoch: number,
    canCommitRevoked: boolean,
  ): Promise<void> {
    this.generationValue = generation;
    const mine = new Set(assignment.filter((tp) => tp.topic === this.topic).map((tp) => tp.partition));
    const taken = new Set(revoked.filter((tp) => tp.topic === this.topic).map((tp) => tp.partition));
    const gone: PartitionState[] = [];
    for (const st of this.partitions.values()) if (!mine.has(st.partition) || taken.has(st.partition)) gone.push(st);
    if (gone.length > 0) {
      for (const st of gone) {
        st.live = false;
        this.dropBuffered(st, false);
      }
      await this.hook(this.options.onRevoked, gone);
      // Still the owner until the next heartbeat releases them: commit what was processed now.
      if (canCommitRevoked && this.autoCommit) await this.commitQuietly(gone, 'processed');
      for (const st of gone) this.forget(st);
    }
    if (epoch !== this.epoch) return;
    const added: PartitionState[] = [];
    for (const partition of mine) {
      if (taken.has(partition)) continue;
      const st = this.partitions.get(partition) ?? this.memberPartition(partition);
      st.live = true;
      if (!st.announced) added.push(st);
      st.announced = true;
    }
    await this.hook(this.options.onAssigned, added);
  }

  /** A partition newly assigned to this member. */
  private memberPartition(partition: number): PartitionState {
    const st = newState(this.topic, partition, `${groupSubPrefix(this.group!)}${this.topic}:${partition}`);
    // Only the filter is restored: commits must never move the group's offset back.
    st.received = this.lostPositions.get(partition) ?? null;
    this.lostPositions.delete(partition);
    st.live = true;
    this.partitions.set(partition, st);
    return st;
  }

  private forget(st: PartitionState): void {
    if (this.partitions.get(st.partition) !== st) return;
    this.partitions.delete(st.partition);
    if (st.delivered !== null) this.lostPositions.set(st.partition, st.delivered);
  }

  /**
   * The membership ended on the server (session expired): every partition is lost, nothing can
   * be committed any more, and the member joins afresh.
   */
  private rejoin(): void {
    if (this.closed) return;
    this.epoch++;
    clearTimeout(this.heartbeatTimer);
    const lost = [...this.partitions.values()];
    for (const st of lost) this.forget(st);
    this.buffer.clear();
    this.memberId = null;
    void this.hook(this.options.onRevoked, lost).then(() => {
      if (this.conn.isOpen) this.establish();
    });
  }

  /** Runs a rebalance hook; its failure is reported, and the rebalance goes on. */
  private async hook(
    fn: ((partitions: readonly TopicPartition[]) => void | Promise<void>) | undefined,
    states: readonly PartitionState[],
  ): Promise<void> {
    if (fn === undefined || states.length === 0) return;
    try {
      await fn(states.map(tp));
    } catch (err) {
      this.conn.report(toError(err));
    }
  }

  // ── records and credit ────────────────────────────────────────────────────────────────────

  private onRecords(frame: RecordsFrame): void {
    if (this.closed) return;
    let st = this.partitions.get(frame.partition);
    if (st === undefined || st.sub !== frame.sub) {
      // A member may see records of a newly assigned partition before the heartbeat reply that
      // lists it is processed; anything else is a late push for a subscription we dropped.
      if (this.mode !== 'member' || frame.sub !== `${groupSubPrefix(this.group!)}${this.topic}:${frame.partition}`) return;
      st = this.memberPartition(frame.partition);
    }
    if (!st.live) return;
    let added = false;
    const sizes = creditSizes(frame);
    for (let i = 0; i < frame.records.length; i++) {
      const record = frame.records[i]!;
      const bytes = sizes[i]!;
      if (st.seeking || (st.received !== null && record.offset < st.received)) {
        // Already delivered (server restarted the partition at the committed offset) or from
        // before a seek: skipped, and its credit goes straight back.
        st.returnRecords += 1;
        st.returnBytes += bytes;
        continue;
      }
      this.buffer.push({ state: st, record, bytes });
      st.received = record.offset + 1;
      added = true;
    }
    // next_offset skips compacted gaps.
    if (!st.seeking && st.received !== null && frame.nextOffset > st.received) st.received = frame.nextOffset;
    this.grant(st, false);
    if (added) this.notify();
  }

  /** Returns used credit in chunks of half the window, or all of it when `force`. */
  private grant(st: PartitionState, force: boolean): void {
    if (!st.live || (st.returnRecords === 0 && st.returnBytes === 0)) return;
    const credits = this.credits();
    if (!force && st.returnRecords * 2 < credits.records && st.returnBytes * 2 < credits.bytes) return;
    this.conn.sendFrame({ type: 'credit', sub: st.sub, records: st.returnRecords, bytes: st.returnBytes });
    // Not sent (disconnected): the resubscription grants a full window anyway.
    st.returnRecords = 0;
    st.returnBytes = 0;
  }

  private dropBuffered(st: PartitionState, returnCredit: boolean): void {
    const dropped = this.buffer.removeWhere((b) => b.state === st);
    if (!returnCredit) return;
    for (const b of dropped) {
      st.returnRecords += 1;
      st.returnBytes += b.bytes;
    }
  }

  private moveTo(st: PartitionState, offset: number): void {
    st.received = offset;
    st.delivered = offset;
    st.processed = offset;
    this.notify();
  }

  private markProcessed(): void {
    const c = this.current;
    if (c !== null) {
      this.current = null;
      processedUpTo(c);
    }
    const batch = this.currentBatch;
    if (batch !== null) {
      this.currentBatch = null;
      for (const last of batch) processedUpTo(last);
    }
  }

  private decode(entry: Buffered): ConsumedRecord<T> {
    const r = entry.record;
    const decode = this.options.decode;
    // Without `decode` the value stays undecoded until read (binary frames decode it lazily).
    if (decode === undefined) return new Consumed<T>(this.topic, entry.state.partition, r, NOT_DECODED);
    try {
      return new Consumed<T>(this.topic, entry.state.partition, r, { value: decode(r.value) });
    } catch (err) {
      throw new DecodeError(this.topic, entry.state.partition, r.offset, err);
    }
  }

  // ── commits ───────────────────────────────────────────────────────────────────────────────

  private owned(): PartitionState[] {
    return [...this.partitions.values()].filter((s) => s.live);
  }

  private async commitPositions(states: readonly PartitionState[], which: 'processed' | 'delivered'): Promise<void> {
    const offsets: (TopicPartition & { offset: number })[] = [];
    const targets: [PartitionState, number][] = [];
    for (const st of states) {
      const at = st[which];
      if (at === null || (st.committed !== null && at <= st.committed)) continue;
      offsets.push({ topic: st.topic, partition: st.partition, offset: at });
      targets.push([st, at]);
    }
    if (offsets.length === 0) return;
    await this.conn.request({ type: 'commit', group: this.group!, offsets }, 'committed');
    for (const [st, at] of targets) if (st.committed === null || at > st.committed) st.committed = at;
  }

  /** Background commits report failures as client `error` events instead of throwing. */
  private async commitQuietly(states: readonly PartitionState[], which: 'processed' | 'delivered'): Promise<void> {
    try {
      await this.commitPositions(states, which);
    } catch (err) {
      // Lost with the connection: the member commits again right after it rejoins.
      if (err instanceof BrookClientError && err.code === 'CONNECTION_LOST') return;
      this.conn.report(toError(err));
    }
  }

  private scheduleIntervalCommit(): void {
    const ms = this.options.autoCommitIntervalMs ?? DEFAULT_AUTO_COMMIT_INTERVAL_MS;
    this.commitTimer = setTimeout(() => {
      if (this.closed) return;
      const run = this.conn.isOpen ? this.commitQuietly(this.owned(), 'processed') : Promise.resolve();
      void run.then(() => this.scheduleIntervalCommit());
    }, ms);
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.epoch++;
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.commitTimer);
    clearTimeout(this.idleCreditTimer);
    this.notify();
    // The record in the application's hands when it breaks out of the loop (or throws: the two
    // look the same from here) is not counted as processed: at-least-once.
    this.current = null;
    this.currentBatch = null;
    const live = this.owned();
    try {
      // As on a rebalance: the application may commit its own way before the partitions go.
      if (this.mode === 'member') await this.hook(this.options.onRevoked, live);
      if (this.conn.isOpen) {
        if (this.group !== undefined && this.autoCommit) await this.commitQuietly(live, 'processed');
        if (this.mode === 'member' && this.memberId !== null) {
          await this.conn.request({ type: 'leave', group: this.group! }, 'left');
        } else if (this.mode !== 'member') {
          for (const st of live) await this.conn.request({ type: 'unsubscribe', sub: st.sub }, 'unsubscribed');
        }
      }
    } catch (err) {
      // The connection dropping here ends the subscription or membership anyway; a subscription
      // the server does not know (it never started, or failed) has nothing to undo.
      const nothingToUndo = ['CONNECTION_LOST', 'CLIENT_CLOSED', 'SUBSCRIPTION_NOT_FOUND'];
      if (!(err instanceof BrookClientError && nothingToUndo.includes(err.code))) {
        this.conn.report(toError(err));
      }
    } finally {
      this.buffer.clear();
      this.partitions.clear();
      for (const d of this.detach.splice(0)) d();
      this.firstReady.reject(new ClientClosedError('consumer'));
      this.onClosed(this);
    }
  }

  private partitionFor(partition: number | undefined): PartitionState {
    if (partition === undefined) {
      const live = this.owned();
      if (live.length !== 1) throw new InvalidArgumentError(`this consumer reads ${live.length} partitions: name the partition`);
      return live[0]!;
    }
    const st = this.partitions.get(partition);
    if (st === undefined || !st.live) throw new InvalidArgumentError(`this consumer does not read partition ${partition}`);
    return st;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = deferred();
    w.resolve();
  }
}

function newState(topic: string, partition: number, sub: string): PartitionState {
  return {
    topic,
    partition,
    sub,
    received: null,
    delivered: null,
    processed: null,
    committed: null,
    seeking: false,
    returnRecords: 0,
    returnBytes: 0,
    live: false,
    announced: false,
  };
}

const NOT_DECODED = null;

/** A consumed record over its wire record: key and value are read from it only when asked for. */
class Consumed<T> implements ConsumedRecord<T> {
  readonly offset: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly record: WireRecord,
    private readonly decoded: { readonly value: T } | null,
  ) {
    this.offset = record.offset;
    this.headers = record.headers;
    this.timestamp = record.timestamp;
  }

  get key(): string | null {
    return this.record.key;
  }

  get value(): T {
    return this.decoded === null ? (this.record.value as T) : this.decoded.value;
  }

  get valueBytes(): Uint8Array | null {
    return this.record.valueBytes;
  }
}

function tp(st: PartitionState): TopicPartition {
  return { topic: st.topic, partition: st.partition };
}

/**
 * Each record's share of the byte credit its frame used. The server counts each record's JSON as
 * sent; the frame's total is exact (RecordsFrame.recordsBytes) and is split evenly over its
 * records, so what is returned for a frame always equals what it used: an estimate that drifted
 * either way would stall the subscription or let it outgrow its window. (An even split rather
 * than one in proportion to each record's size: re-serializing every record to weigh it cost
 * about a tenth of the consumer's CPU, and only the frame's total matters to the window.) Only
 * a frame laid out otherwise, without a total, is weighed record by record.
 */
function creditSizes(frame: RecordsFrame): readonly number[] {
  if (frame.sizes !== undefined) return frame.sizes;
  const total = frame.recordsBytes;
  const count = frame.records.length;
  if (total === undefined) return frame.records.map((r) => utf8Length(JSON.stringify(r)));
  if (count === 0) return [];
  const share = Math.floor(total / count);
  const sizes = new Array<number>(count).fill(share);
  sizes[count - 1]! += total - share * count;
  return sizes;
}

/** The application is done with `entry` and everything before it in its partition. */
function processedUpTo(entry: Buffered): void {
  const next = entry.record.offset + 1;
  if (entry.state.processed === null || next > entry.state.processed) entry.state.processed = next;
}
