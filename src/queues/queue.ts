/**
 * One work queue: the in-memory state machine over its journal (docs/queues.md).
 *
 * ```
 *            enqueue (E)                receive (L)              ack (A)
 *   ──────────────────────► READY ───────────────────► IN FLIGHT ─────────► gone
 *      delay │        ▲ due    ▲  lease expired / nack (N)  │
 *            ▼        │        └────────────────────────────┤ n ≥ max, reject, deadline, TTL
 *          DELAYED ───┘                                     ▼
 *                                                   dead letters (D, then K)
 * ```
 *
 * Every change that must survive a crash is appended to the journal before the caller hears of
 * it; leases are not durable: after a restart every message that was in flight is ready again,
 * with its delivery counted.
 */
import type { Logger } from 'pino';
import { InvalidArgumentError, type ProduceRecord, type StoredRecord } from '../engine/index.js';
import { fullJitterDelay } from './backoff.js';
import {
  bareKey,
  jsonValue,
  metaKey,
  metaOf,
  parseJsonValue,
  Tag,
  tagOf,
  type CarryMeta,
  type EnqueueMeta,
} from './codec.js';
import {
  MAX_DEDUP_ENTRIES,
  MAX_DELAY_MS,
  MAX_ERROR_LENGTH,
  MAX_RECEIVE,
  MAX_VISIBILITY_MS,
  MAX_WAITERS_PER_QUEUE,
} from './config.js';
import { QueueClosedError, QueueFullError, TooManyWaitersError, UnknownReceiptError } from './errors.js';
import { DedupWindow } from './dedup-window.js';
import { enqueueMeta, NO_META } from './enqueue-meta.js';
import { Heap } from './heap.js';
import { ReceiveWaiters } from './receive-waiters.js';
import { DeadLetterStore } from './dead-letter-store.js';
import type { QueueLogs } from './storage.js';
import type {
  DeadLetter,
  DeadLetterReason,
  DeadLetterSelection,
  Delivery,
  EnqueueMessage,
  QueueConfig,
  QueueStats,
  ReceiveOptions,
} from './types.js';
import { deferred } from '../lib/deferred.js';

const READY = 0;
const DELAYED = 1;
const IN_FLIGHT = 2;
/** Waiting behind an earlier message of its key (key-sticky). */
const BLOCKED = 3;
const DONE = 4;

interface Message {
  readonly id: number;
  readonly value: Uint8Array;
  readonly key: string | null;
  readonly priority: number;
  /** Infinity when none. */
  readonly deadline: number;
  /** Infinity when none. */
  readonly expiresAt: number;
  readonly enqueuedAt: number;
  readonly dedupId: string | null;
  readyAt: number;
  deliveries: number;
  state: number;
  lastError: string | null;
  /** Offset of the record that holds the message's payload (its E, or its latest C). */
  anchor: number;
  leaseSeq: number;
  leaseExpiresAt: number;
  deliveredAt: number;
  receipt: string;
  worker: string;
  /** Was in flight when the journal was last replayed (set only during recovery). */
  leased: boolean;
}

interface LeaseEntry {
  readonly at: number;
  readonly msg: Message;
  readonly seq: number;
}

/** What the queue reports to metrics; every method is called once per batch, not per message. */
export interface QueueObserver {
  delivered(queue: string, count: number, redelivered: number): void;
  acked(queue: string, processingMs: readonly number[]): void;
  deadLettered(queue: string, reason: DeadLetterReason, count: number): void;
}

export interface QueueDeps {
  readonly name: string;
  readonly logs: QueueLogs;
  readonly logger: Logger;
  readonly clock: () => number;
  readonly random: () => number;
  /** Schedule the timer for due delays, leases and deadlines (off in tests that drive `advance`). */
  readonly timers: boolean;
  readonly observer?: QueueObserver;
  /** See QueueManagerOptions.carryForwardAfter. */
  readonly carryForwardAfter: number;
}

const readyOrder = (a: Message, b: Message): boolean =>
  a.deadline !== b.deadline ? a.deadline < b.deadline : a.priority !== b.priority ? a.priority > b.priority : a.id < b.id;
const delayedOrder = (a: Message, b: Message): boolean => (a.readyAt !== b.readyAt ? a.readyAt < b.readyAt : a.id < b.id);
const leaseOrder = (a: LeaseEntry, b: LeaseEntry): boolean => a.at < b.at;

/** The message id of a receipt `<id>.<delivery>.<nonce>`, or -1; the whole receipt is compared with the lease's. */
function receiptId(receipt: string): number {
  const dot = receipt.indexOf('.');
  if (dot < 1 || dot > 16) return -1;
  const id = Number(receipt.slice(0, dot));
  return Number.isSafeInteger(id) ? id : -1;
}

export class Queue {
  readonly name: string;
  private config: QueueConfig;
  private readonly logs: QueueLogs;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly observer: QueueObserver | undefined;
  private readonly carryForwardAfter: number;

  /** Every message not finished, in anchor order (Map keeps insertion order): the first pins the journal. */
  private readonly live = new Map<number, Message>();
  private readonly ready = new Heap<Message>(readyOrder);
  private readonly delayed = new Heap<Message>(delayedOrder);
  private readonly leases = new Heap<LeaseEntry>(leaseOrder);
  /** key-sticky: per key, its unfinished messages in id order; only the head is scheduled. */
  private readonly chains = new Map<string, Message[]>();
  private readonly dedup: DedupWindow;
  private readonly deadLetters: DeadLetterStore;
  private readonly workers = new Map<string, number>();
  private readonly waiters: ReceiveWaiters;
  private readonly readyCountNow = (): number => this.readyCount;
  private readonly inFlightOf = (worker: string): number => this.workers.get(worker) ?? 0;

  private readyCount = 0;
  private delayedCount = 0;
  private inFlightCount = 0;
  private blockedCount = 0;
  /** Enqueues accepted but not yet durable: they count against maxDepth. */
  private pendingEnqueues = 0;
  /** Payload bytes of the live messages, and of the enqueues being written. */
  private liveBytes = 0;
  private pendingBytes = 0;
  private ackIds: number[] = [];
  private ackWrite: Promise<void> | null = null;
  private counters = { deliveries: 0, redeliveries: 0, acked: 0, deadLettered: 0 };

  /** Dead-letter writes started by timers and receives (nobody awaits them); `idle()` does. */
  private readonly background = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private readonly timers: boolean;
  private closed = false;

  constructor(deps: QueueDeps, config: QueueConfig) {
    this.name = deps.name;
    this.config = config;
    this.logs = deps.logs;
    this.logger = deps.logger.child({ queue: deps.name });
    this.clock = deps.clock;
    this.random = deps.random;
    this.observer = deps.observer;
    this.timers = deps.timers;
    this.carryForwardAfter = deps.carryForwardAfter;
    this.deadLetters = new DeadLetterStore(deps.logs.deadLetters, this.logger);
    this.waiters = new ReceiveWaiters(MAX_WAITERS_PER_QUEUE, () => new TooManyWaitersError(this.name));
    this.dedup = new DedupWindow(() => this.config.dedupWindowMs, MAX_DEDUP_ENTRIES);
  }

  get currentConfig(): QueueConfig {
    return this.config;
  }

  reconfigure(config: QueueConfig): void {
    this.config = config;
  }

  // ── recovery ──────────────────────────────────────────────────────────────────────────────

  /** Rebuilds the queue from its logs: dead letters first, then the journal. */
  async recover(): Promise<void> {
    await this.deadLetters.replay();
    const now = this.clock();
    await this.logs.journal.replay((r) => this.replayJournal(r, now));
    const revived: Message[] = [];
    const killed: Message[] = [];
    for (const msg of this.live.values()) {
      if (this.deadLetters.has(msg.id)) {
        // Dead-lettered, but the K marker did not make it before the crash.
        killed.push(msg);
        continue;
      }
      revived.push(msg);
    }
    for (const msg of killed) this.live.delete(msg.id);
    if (killed.length > 0) {
      const marked = this.append([{ key: bareKey(Tag.Killed), value: jsonValue(killed.map((m) => m.id)) }]);
      this.inBackground(marked.then(() => undefined), 'marking dead-lettered messages');
    }
    revived.sort((a, b) => a.id - b.id);
    for (const msg of revived) this.liveBytes += msg.value.length;
    const exhausted: Message[] = [];
    for (const msg of revived) {
      if (msg.leased) {
        msg.leased = false;
        if (msg.deliveries >= this.config.maxDeliveries) {
          msg.lastError ??= 'in flight when the server stopped';
          exhausted.push(msg);
          continue;
        }
      }
      this.schedule(msg, now);
    }
    if (exhausted.length > 0) {
      for (const msg of exhausted) {
        this.live.delete(msg.id);
        this.liveBytes -= msg.value.length;
      }
      this.inBackground(this.deadLetter(exhausted, 'MAX_DELIVERIES', now), 'dead-lettering at recovery');
    }
    await this.idle();
    this.logger.info(
      { live: this.live.size, deadLetters: this.deadLetters.size, ready: this.readyCount, delayed: this.delayedCount },
      'queue recovered',
    );
    this.advance();
  }

  private replayJournal(r: StoredRecord, now: number): void {
    switch (tagOf(r.key)) {
      case Tag.Enqueue: {
        const meta = metaOf<EnqueueMeta>(r.key!) ?? {};
        const msg = newMessage(r.offset, r.value ?? new Uint8Array(0), meta, r.timestamp, r.offset);
        this.live.set(msg.id, msg);
        if (meta.u !== undefined && r.timestamp + this.config.dedupWindowMs > now) this.dedup.remember(meta.u, msg.id, r.timestamp);
        break;
      }
      case Tag.Carry: {
        const meta = metaOf<CarryMeta>(r.key!)!;
        const msg = newMessage(meta.i, r.value ?? new Uint8Array(0), meta, meta.t, r.offset);
        msg.deliveries = meta.n;
        msg.lastError = meta.e ?? null;
        msg.leased = meta.f === 1;
        this.live.delete(msg.id);
        this.live.set(msg.id, msg);
        break;
      }
      case Tag.Delivered:
        for (const id of parseJsonValue<number[]>(r.value)) {
          const msg = this.live.get(id);
          if (!msg) continue;
          msg.deliveries++;
          msg.leased = true;
          msg.readyAt = 0;
        }
        break;
      case Tag.Released:
        for (const [id, readyAt, error] of parseJsonValue<[number, number, string | null][]>(r.value)) {
          const msg = this.live.get(id);
          if (!msg) continue;
          msg.leased = false;
          msg.readyAt = readyAt;
          msg.lastError = error;
        }
        break;
      case Tag.Acked:
      case Tag.Killed:
        for (const id of parseJsonValue<number[]>(r.value)) this.live.delete(id);
        break;
      default:
        this.logger.warn({ offset: r.offset }, 'unknown journal record skipped');
    }
  }

  // ── enqueue ───────────────────────────────────────────────────────────────────────────────

  /** Appends `messages` durably; resolves to their ids (the first id for a deduplicated one). */
  async enqueue(messages: readonly EnqueueMessage[]): Promise<string[]> {
    this.assertOpen();
    const now = this.clock();
    const ids: (number | Promise<number> | null)[] = new Array<number | Promise<number> | null>(messages.length).fill(null);
    const records: ProduceRecord[] = [];
    const metas: EnqueueMeta[] = [];
    const slots: number[] = [];
    const fresh = new Map<string, { slot: number; index: number }>(); // dedup ids first seen in this batch
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const meta = enqueueMeta(m, now, this.config.defaultTtlMs);
      if (meta.u !== undefined) {
        const seen = this.dedup.lookup(meta.u, now);
        if (seen !== null) {
          ids[i] = seen;
          continue;
        }
        const first = fresh.get(meta.u);
        if (first !== undefined) {
          ids[i] = -1 - first.slot; // resolved below to the id of that slot
          continue;
        }
        fresh.set(meta.u, { slot: i, index: records.length });
      }
      slots.push(i);
      metas.push(meta);
      records.push({ key: meta === NO_META || !hasMeta(meta) ? ENQUEUE_KEY : metaKey(Tag.Enqueue, meta), value: m.value });
    }
    if (records.length > 0) {
      let bytes = 0;
      for (const r of records) bytes += r.value!.length;
      // Dead letters of drop_oldest: this enqueue resolves once they are written (a caller that
      // sees its enqueue done finds what it pushed out in the dead letters).
      const dropped = this.makeRoom(records.length, bytes, now);
      this.pendingEnqueues += records.length;
      this.pendingBytes += bytes;
      const written = deferred<number>();
      written.promise.catch(() => undefined); // observed through the dedup entries and the await below
      for (const [dedupId, { index }] of fresh) this.dedup.remember(dedupId, written.promise.then((base) => base + index), now);
      let base: number;
      try {
        base = await this.logs.journal.append(records);
        written.resolve(base);
      } catch (err) {
        written.reject(err as Error);
        for (const dedupId of fresh.keys()) this.dedup.forget(dedupId);
        throw err;
      } finally {
        this.pendingEnqueues -= records.length;
        this.pendingBytes -= bytes;
      }
      const at = this.clock();
      for (let j = 0; j < records.length; j++) {
        if (this.closed) throw new QueueClosedError(); // written, but nobody will serve it before a restart
        const msg = newMessage(base + j, records[j]!.value!, metas[j]!, at, base + j);
        this.live.set(msg.id, msg);
        this.liveBytes += msg.value.length;
        this.schedule(msg, at);
        ids[slots[j]!] = msg.id;
      }
      this.armTimer();
      await dropped; // never rejects: a failed dead-letter write is logged, and the journal keeps the messages
    }
    const out: string[] = new Array<string>(messages.length);
    for (let i = 0; i < messages.length; i++) {
      let id = ids[i]!;
      if (typeof id === 'number' && id < 0) id = ids[-1 - id]!;
      out[i] = String(typeof id === 'number' ? id : await id);
    }
    return out;
  }

  /**
   * Enforces maxDepth and maxBytes before `incoming` messages of `incomingBytes` are written:
   * refuse the whole batch, or dead-letter the oldest ready or delayed messages (returns their
   * dead-letter write, which never rejects).
   */
  private makeRoom(incoming: number, incomingBytes: number, now: number): Promise<void> | undefined {
    const { maxDepth, maxBytes, overflow } = this.config;
    const overCount = this.live.size + this.pendingEnqueues + incoming - maxDepth;
    const overBytes = this.liveBytes + this.pendingBytes + incomingBytes - maxBytes;
    if (overCount <= 0 && overBytes <= 0) return undefined;
    const limit = overCount > 0 ? `${maxDepth} messages (max_depth)` : `${maxBytes} bytes (max_bytes)`;
    if (overflow === 'reject' || incoming > maxDepth || incomingBytes > maxBytes) throw new QueueFullError(this.name, limit);
    const victims: Message[] = [];
    let freedBytes = 0;
    for (const msg of this.live.values()) {
      if (victims.length >= overCount && freedBytes >= overBytes) break;
      if (msg.state === READY || msg.state === DELAYED) {
        victims.push(msg);
        freedBytes += msg.value.length;
      }
    }
    if (victims.length < overCount || freedBytes < overBytes) throw new QueueFullError(this.name, limit); // the rest is in flight
    for (const msg of victims) {
      msg.lastError = 'dropped: the queue was full';
      this.finish(msg, now);
    }
    return this.inBackground(this.deadLetter(victims, 'DROPPED', now), 'dead-lettering dropped messages');
  }

  // ── scheduling ────────────────────────────────────────────────────────────────────────────

  /** Puts a live message where it belongs: behind its key, delayed, or ready. */
  private schedule(msg: Message, now: number): void {
    if (this.config.balance === 'key-sticky' && msg.key !== null) {
      const chain = this.chains.get(msg.key);
      if (chain === undefined) {
        this.chains.set(msg.key, [msg]);
      } else if (chain[0] !== msg) {
        chain.push(msg);
        msg.state = BLOCKED;
        this.blockedCount++;
        return;
      }
    }
    this.place(msg, now);
  }

  private place(msg: Message, now: number): void {
    if (msg.readyAt > now) {
      msg.state = DELAYED;
      this.delayedCount++;
      this.delayed.push(msg);
    } else {
      msg.state = READY;
      this.readyCount++;
      this.ready.push(msg);
      this.waiters.wake(this.config.balance, this.readyCountNow, this.inFlightOf);
    }
  }

  /** Takes a message out of whatever state it is in; it is no longer live. */
  private finish(msg: Message, now: number): void {
    switch (msg.state) {
      case READY:
        this.readyCount--;
        break;
      case DELAYED:
        this.delayedCount--;
        break;
      case IN_FLIGHT:
        this.inFlightCount--;
        this.releaseWorker(msg.worker);
        break;
      case BLOCKED:
        this.blockedCount--;
        break;
    }
    msg.state = DONE;
    if (this.live.delete(msg.id)) this.liveBytes -= msg.value.length;
    if (msg.key !== null) {
      const chain = this.chains.get(msg.key);
      if (chain !== undefined) {
        const at = chain.indexOf(msg);
        if (at >= 0) chain.splice(at, 1);
        if (chain.length === 0) this.chains.delete(msg.key);
        else if (at === 0) {
          const next = chain[0]!;
          if (next.state === BLOCKED) {
            this.blockedCount--;
            this.place(next, now);
          }
        }
      }
    }
  }

  private releaseWorker(worker: string): void {
    const n = (this.workers.get(worker) ?? 1) - 1;
    if (n <= 0) this.workers.delete(worker);
    else this.workers.set(worker, n);
  }

  /**
   * Moves what is due at the clock's now: delays that ended → ready, leases that expired →
   * ready again (or dead letters past maxDeliveries), deadlines and TTLs that passed → dead
   * letters. Called by the timer, and before every receive.
   */
  advance(): void {
    if (this.closed) return;
    const now = this.clock();
    for (let top = this.delayed.peek(); top !== undefined && top.readyAt <= now; top = this.delayed.peek()) {
      this.delayed.pop();
      if (top.state !== DELAYED) continue;
      this.delayedCount--;
      this.place(top, now);
    }
    const exhausted: Message[] = [];
    for (let top = this.leases.peek(); top !== undefined && top.at <= now; top = this.leases.peek()) {
      this.leases.pop();
      const msg = top.msg;
      if (msg.state !== IN_FLIGHT || msg.leaseSeq !== top.seq) continue;
      if (msg.leaseExpiresAt > now) {
        this.leases.push({ at: msg.leaseExpiresAt, msg, seq: msg.leaseSeq }); // extended
        continue;
      }
      msg.lastError = 'lease expired';
      if (msg.deliveries >= this.config.maxDeliveries) {
        this.finish(msg, now);
        exhausted.push(msg);
        continue;
      }
      this.inFlightCount--;
      this.releaseWorker(msg.worker);
      msg.readyAt = now;
      this.place(msg, now);
    }
    if (exhausted.length > 0) {
      this.inBackground(this.deadLetter(exhausted, 'MAX_DELIVERIES', now), 'dead-lettering expired leases');
    }
    // EDF keeps the earliest deadline on top, so the late ones are always found first.
    const late: Message[] = [];
    for (let top = this.ready.peek(); top !== undefined && (top.state !== READY || top.deadline <= now); top = this.ready.peek()) {
      this.ready.pop();
      if (top.state !== READY) continue;
      this.finish(top, now);
      late.push(top);
    }
    if (late.length > 0) {
      this.inBackground(this.deadLetter(late, 'DEADLINE_EXCEEDED', now), 'dead-lettering late messages');
    }
    this.dropStaleEntries();
    this.armTimer();
  }

  /**
   * Heaps delete lazily (an acked message's lease entry stays until its expiry would have come);
   * when stale entries outnumber live ones the heap is rebuilt, so memory follows the live set.
   */
  private dropStaleEntries(): void {
    if (this.leases.size > 2 * this.inFlightCount + 1_024) {
      this.leases.retain((e) => e.msg.state === IN_FLIGHT && e.msg.leaseSeq === e.seq);
    }
    if (this.ready.size > 2 * this.readyCount + 1_024) this.ready.retain((m) => m.state === READY);
    if (this.delayed.size > 2 * this.delayedCount + 1_024) this.delayed.retain((m) => m.state === DELAYED);
  }

  private armTimer(): void {
    if (!this.timers || this.closed) return;
    let at = Infinity;
    const d = this.delayed.peek();
    if (d) at = d.readyAt;
    const l = this.leases.peek();
    if (l && l.at < at) at = l.at;
    const r = this.ready.peek();
    if (r && r.deadline < at) at = r.deadline;
    if (at === Infinity || (this.timer !== null && this.timerAt <= at)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.advance();
      },
      Math.max(0, Math.min(at - this.clock(), 2_147_483_647)),
    );
    this.timer.unref();
  }

  // ── receive ───────────────────────────────────────────────────────────────────────────────

  /**
   * Leases up to `max` ready messages, earliest deadline first, then highest priority, then
   * oldest. With `waitMs`, waits that long for a first message. The deliveries are durable
   * (counted) before this resolves.
   */
  async receive(options: ReceiveOptions = {}, waitMs = 0, signal?: AbortSignal): Promise<Delivery[]> {
    this.assertOpen();
    const max = options.max ?? 10;
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_RECEIVE) throw new InvalidArgumentError(`max must be an integer in [1, ${MAX_RECEIVE}], got ${max}`);
    const visibility = options.visibilityMs ?? this.config.visibilityMs;
    if (!Number.isSafeInteger(visibility) || visibility < 1 || visibility > MAX_VISIBILITY_MS) {
      throw new InvalidArgumentError(`visibility_ms must be an integer in [1, ${MAX_VISIBILITY_MS}], got ${visibility}`);
    }
    const worker = options.worker ?? '';
    // A long poll waits in real time, whatever clock the queue's timestamps come from.
    const until = performance.now() + waitMs;
    let take = max;
    for (;;) {
      const got = await this.tryReceive(take, visibility, worker);
      if (got.length > 0 || waitMs <= 0 || signal?.aborted) return got;
      const left = until - performance.now();
      if (left <= 0) return got;
      const share = await this.waiters.wait(left, worker, signal);
      take = share > 0 ? Math.min(max, share) : max;
      if (this.closed) return [];
    }
  }

  private tryReceive(max: number, visibility: number, worker: string): Promise<Delivery[]> | Delivery[] {
    this.advance();
    const held = this.workers.get(worker) ?? 0;
    const n = Math.min(max, this.config.maxInFlightPerWorker - held);
    if (n <= 0 || this.readyCount === 0) return [];
    const now = this.clock();
    const out: Delivery[] = [];
    const ids: number[] = [];
    const expired: Message[] = [];
    let redelivered = 0;
    while (out.length < n) {
      const msg = this.ready.pop();
      if (msg === undefined) break;
      if (msg.state !== READY) continue;
      if (msg.expiresAt <= now) {
        msg.lastError ??= 'expired before it was handled';
        this.finish(msg, now);
        expired.push(msg);
        continue;
      }
      this.readyCount--;
      msg.state = IN_FLIGHT;
      this.inFlightCount++;
      msg.deliveries++;
      if (msg.deliveries > 1) redelivered++;
      msg.leaseSeq++;
      msg.leaseExpiresAt = now + visibility;
      msg.deliveredAt = now;
      msg.worker = worker;
      msg.receipt = `${msg.id}.${msg.deliveries}.${((this.random() * 0x7fffffff) | 0).toString(36)}`;
      this.leases.push({ at: msg.leaseExpiresAt, msg, seq: msg.leaseSeq });
      ids.push(msg.id);
      out.push({
        id: String(msg.id),
        receipt: msg.receipt,
        deliveries: msg.deliveries,
        value: msg.value,
        key: msg.key,
        enqueuedAt: msg.enqueuedAt,
        deadline: msg.deadline === Infinity ? null : msg.deadline,
        priority: msg.priority,
        leaseExpiresAt: msg.leaseExpiresAt,
      });
    }
    // Awaited with the deliveries, so the receiver that found them sees them in the dead letters.
    const dead = expired.length > 0 ? this.deadLetter(expired, 'EXPIRED', now) : null;
    if (out.length === 0) return dead === null ? out : dead.then(() => out);
    this.workers.set(worker, held + out.length);
    this.counters.deliveries += out.length;
    this.counters.redeliveries += redelivered;
    this.observer?.delivered(this.name, out.length, redelivered);
    this.armTimer();
    // The delivery count is durable before the worker sees the message, so a message that keeps
    // crashing the server still reaches maxDeliveries.
    const delivered = this.append([{ key: bareKey(Tag.Delivered), value: jsonValue(ids) }]);
    return (dead === null ? delivered : Promise.all([delivered, dead])).then(() => out);
  }

  // ── settle ────────────────────────────────────────────────────────────────────────────────

  /**
   * Looks up the current leases for `receipts`. Unknown ones (malformed, expired, already
   * settled, of an earlier delivery) are collected, not thrown, so the valid ones still apply.
   */
  private leased(receipts: readonly string[]): { found: Message[]; unknown: string[] } {
    const found: Message[] = [];
    const unknown: string[] = [];
    const seen = receipts.length > 1 ? new Set<Message>() : null;
    for (const receipt of receipts) {
      const msg = this.live.get(receiptId(receipt));
      if (msg === undefined || msg.state !== IN_FLIGHT || msg.receipt !== receipt || seen?.has(msg) === true) {
        unknown.push(receipt);
        continue;
      }
      seen?.add(msg);
      found.push(msg);
    }
    return { found, unknown };
  }

  private refuse(unknown: readonly string[], total: number, done: string): void {
    if (unknown.length === 0) return;
    const shown = unknown.slice(0, 5).map((r) => JSON.stringify(r.slice(0, 64))).join(', ');
    const more = unknown.length > 5 ? ` and ${unknown.length - 5} more` : '';
    const rest = total - unknown.length;
    throw new UnknownReceiptError(
      unknown,
      `${unknown.length} of ${total} receipts are not current leases (unknown, expired, or already settled): ${shown}${more}` +
        (rest > 0 ? `; the other ${rest} were ${done}` : ''),
    );
  }

  /** Acknowledges: the messages are done and never delivered again. Durable before it resolves. */
  async ack(receipts: readonly string[]): Promise<void> {
    this.assertOpen();
    const { found, unknown } = this.leased(receipts);
    if (found.length > 0) {
      const now = this.clock();
      const ids: number[] = new Array<number>(found.length);
      const latencies: number[] = new Array<number>(found.length);
      for (let i = 0; i < found.length; i++) {
        const msg = found[i]!;
        ids[i] = msg.id;
        latencies[i] = now - msg.deliveredAt;
        this.finish(msg, now);
      }
      this.counters.acked += found.length;
      this.dropStaleEntries();
      this.observer?.acked(this.name, latencies);
      await this.journalAcks(ids);
    }
    this.refuse(unknown, receipts.length, 'acknowledged');
  }

  /**
   * Releases for redelivery after `delayMs`, or after the backoff (full jitter) when none is
   * given; a message that had maxDeliveries deliveries is dead-lettered instead.
   */
  async nack(receipts: readonly string[], delayMs?: number, error?: string): Promise<void> {
    this.assertOpen();
    if (delayMs !== undefined && (!Number.isSafeInteger(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS)) {
      throw new InvalidArgumentError(`delay_ms must be an integer in [0, ${MAX_DELAY_MS}], got ${delayMs}`);
    }
    const { found, unknown } = this.leased(receipts);
    const now = this.clock();
    const lastError = error === undefined ? null : error.slice(0, MAX_ERROR_LENGTH);
    const released: [number, number, string | null][] = [];
    const exhausted: Message[] = [];
    for (const msg of found) {
      msg.lastError = lastError ?? msg.lastError;
      if (msg.deliveries >= this.config.maxDeliveries) {
        this.finish(msg, now);
        exhausted.push(msg);
        continue;
      }
      this.inFlightCount--;
      this.releaseWorker(msg.worker);
      msg.readyAt = now + (delayMs ?? fullJitterDelay(this.config.backoff, msg.deliveries, this.random));
      released.push([msg.id, msg.readyAt, msg.lastError]);
      this.place(msg, now);
    }
    this.armTimer();
    const writes: Promise<unknown>[] = [];
    if (released.length > 0) writes.push(this.append([{ key: bareKey(Tag.Released), value: jsonValue(released) }]));
    if (exhausted.length > 0) writes.push(this.deadLetter(exhausted, 'MAX_DELIVERIES', now));
    await Promise.all(writes);
    this.refuse(unknown, receipts.length, 'released');
  }

  /** Extends leases to `visibilityMs` from now (leases are not durable: nothing is written). */
  extend(receipts: readonly string[], visibilityMs?: number): void {
    this.assertOpen();
    const visibility = visibilityMs ?? this.config.visibilityMs;
    if (!Number.isSafeInteger(visibility) || visibility < 1 || visibility > MAX_VISIBILITY_MS) {
      throw new InvalidArgumentError(`visibility_ms must be an integer in [1, ${MAX_VISIBILITY_MS}], got ${visibility}`);
    }
    const { found, unknown } = this.leased(receipts);
    const until = this.clock() + visibility;
    for (const msg of found) msg.leaseExpiresAt = until;
    this.refuse(unknown, receipts.length, 'extended');
  }

  /** Dead-letters now (REJECTED), whatever the delivery count. */
  async reject(receipts: readonly string[], error?: string): Promise<void> {
    this.assertOpen();
    const { found, unknown } = this.leased(receipts);
    const now = this.clock();
    for (const msg of found) {
      if (error !== undefined) msg.lastError = error.slice(0, MAX_ERROR_LENGTH);
      this.finish(msg, now);
    }
    if (found.length > 0) await this.deadLetter(found, 'REJECTED', now);
    this.refuse(unknown, receipts.length, 'rejected');
  }

  // ── dead letters ──────────────────────────────────────────────────────────────────────────

  /**
   * Writes finished messages to the dead-letter log, then marks them dead in the journal. A crash
   * between the two leaves the message in both; recovery trusts the dead-letter log.
   */
  private async deadLetter(msgs: readonly Message[], reason: DeadLetterReason, now: number): Promise<void> {
    this.counters.deadLettered += msgs.length;
    this.observer?.deadLettered(this.name, reason, msgs.length);
    await this.deadLetters.add(msgs, reason, now, this.config.maxDeadLetters);
    await this.append([{ key: bareKey(Tag.Killed), value: jsonValue(msgs.map((m) => m.id)) }]);
  }

  /**
   * Dead letters in the order they were dead-lettered, starting after the one with id `after`
   * (from the start when it is absent or no longer a dead letter).
   */
  listDeadLetters(limit: number, after?: string): DeadLetter[] {
    return this.deadLetters.list(limit, after === undefined ? undefined : Number(after));
  }

  getDeadLetter(id: string): DeadLetter | undefined {
    return this.deadLetters.get(Number(id));
  }

  /**
   * Enqueues the selected dead letters again as new messages (fresh delivery count), then removes
   * them from the dead-letter queue. A crash between the two redrives them twice (at least once).
   */
  async redrive(selection: DeadLetterSelection): Promise<string[]> {
    this.assertOpen();
    const ids = this.deadLetters.select(selection, this.clock());
    if (ids.length === 0) return [];
    const messages: EnqueueMessage[] = [];
    for (const id of ids) {
      const letter = this.deadLetters.get(id)!;
      const m: { -readonly [K in keyof EnqueueMessage]: EnqueueMessage[K] } = { value: letter.value };
      if (letter.key !== null) m.key = letter.key;
      if (letter.priority !== 0) m.priority = letter.priority;
      messages.push(m);
    }
    const newIds: string[] = [];
    for (let i = 0; i < messages.length; i += 1_000) newIds.push(...(await this.enqueue(messages.slice(i, i + 1_000))));
    await this.deadLetters.remove(ids);
    return newIds;
  }

  async deleteDeadLetters(selection: DeadLetterSelection): Promise<number> {
    this.assertOpen();
    const ids = this.deadLetters.select(selection, this.clock());
    await this.deadLetters.remove(ids);
    return ids.length;
  }

  // ── compaction ────────────────────────────────────────────────────────────────────────────

  /**
   * Lets the storage drop finished messages: the journal is truncated below the oldest live
   * message (and the oldest dedup id still in its window). A few old live messages (long delays)
   * would pin the whole journal, so once the journal is much longer than the live set, the oldest
   * live messages are carried forward: their full state is rewritten at the end (C records).
   */
  async compact(): Promise<void> {
    if (this.closed) return;
    const now = this.clock();
    const journal = this.logs.journal;
    const end = journal.nextOffset;
    const slack = Math.max(this.carryForwardAfter, 4 * this.live.size);
    if (end - journal.lowWatermark > slack) await this.carryForward(end - slack / 2, now);
    let keep = end;
    for (const msg of this.live.values()) {
      keep = msg.anchor;
      break;
    }
    // A dedup id still being written is at or past the journal's current end.
    keep = Math.min(keep, this.dedup.expire(now, journal.nextOffset));
    if (this.pendingEnqueues === 0) await journal.truncateBefore(keep);
    await this.deadLetters.truncate();
  }

  private async carryForward(below: number, now: number): Promise<void> {
    const moving: Message[] = [];
    for (const msg of this.live.values()) {
      if (msg.anchor >= below || moving.length >= 1_000) break;
      moving.push(msg);
    }
    if (moving.length === 0) return;
    const records = moving.map((msg) => {
      const meta: CarryMeta = { i: msg.id, n: msg.deliveries, t: msg.enqueuedAt };
      if (msg.state === IN_FLIGHT) meta.f = 1;
      else if (msg.readyAt > now) meta.r = msg.readyAt;
      if (msg.deadline !== Infinity) meta.d = msg.deadline;
      if (msg.priority !== 0) meta.p = msg.priority;
      if (msg.key !== null) meta.k = msg.key;
      if (msg.expiresAt !== Infinity) meta.x = msg.expiresAt;
      if (msg.lastError !== null) meta.e = msg.lastError;
      return { key: metaKey(Tag.Carry, meta), value: msg.value };
    });
    const base = await this.append(records);
    for (let i = 0; i < moving.length; i++) {
      const msg = moving[i]!;
      if (msg.state === DONE) continue; // finished meanwhile; its A/K comes after the C
      msg.anchor = base + i;
      this.live.delete(msg.id);
      this.live.set(msg.id, msg);
    }
  }

  // ── introspection and lifecycle ───────────────────────────────────────────────────────────

  stats(): QueueStats {
    const now = this.clock();
    let oldest = now;
    for (const msg of this.live.values()) {
      oldest = Math.min(oldest, msg.enqueuedAt);
      break; // anchor order ≈ age order; carried messages are old but rare
    }
    return {
      name: this.name,
      config: this.config,
      depth: this.live.size,
      bytes: this.liveBytes,
      ready: this.readyCount,
      inFlight: this.inFlightCount,
      delayed: this.delayedCount + this.blockedCount,
      deadLetters: this.deadLetters.size,
      oldestAgeMs: this.live.size === 0 ? 0 : Math.max(0, now - oldest),
      deliveries: this.counters.deliveries,
      redeliveries: this.counters.redeliveries,
      acked: this.counters.acked,
      deadLettered: this.counters.deadLettered,
    };
  }

  /** Stops timers and wakes waiters; what is durable stays on disk for the next open. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.waiters.wakeAll();
  }

  private assertOpen(): void {
    if (this.closed) throw new QueueClosedError();
  }

  /**
   * Acks of one tick share one A record (workers ack job by job; a record per ack would cost a
   * buffer, a JSON list and an engine record each). Deferring the A to the end of the tick keeps
   * the journal correct: nothing is ever written about a message after its A.
   */
  private journalAcks(ids: readonly number[]): Promise<void> {
    for (const id of ids) this.ackIds.push(id);
    this.ackWrite ??= Promise.resolve().then(() => {
      const batch = this.ackIds;
      this.ackIds = [];
      this.ackWrite = null;
      return this.append([{ key: bareKey(Tag.Acked), value: jsonValue(batch) }]).then(() => undefined);
    });
    return this.ackWrite;
  }

  private append(records: readonly ProduceRecord[]): Promise<number> {
    return this.logs.journal.append(records);
  }

  /** Tracks `work` until it settles (see `idle`) and logs its failure; returns the tracked promise, which never rejects. */
  private inBackground(work: Promise<void>, what: string): Promise<void> {
    const tracked = work.catch((err: unknown) => this.logFailure(err, what)).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
    return tracked;
  }

  /** Resolves once the dead-letter writes started so far are durable. */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  private logFailure(err: unknown, what: string): void {
    this.logger.error({ err }, `${what} failed; the journal still holds the messages, so a restart recovers them`);
  }
}

const ENQUEUE_KEY = bareKey(Tag.Enqueue);

function hasMeta(meta: EnqueueMeta): boolean {
  for (const _ in meta) return true;
  return false;
}

function newMessage(id: number, value: Uint8Array, meta: EnqueueMeta, enqueuedAt: number, anchor: number): Message {
  return {
    id,
    value,
    key: meta.k ?? null,
    priority: meta.p ?? 0,
    deadline: meta.d ?? Infinity,
    expiresAt: meta.x ?? Infinity,
    enqueuedAt,
    dedupId: meta.u ?? null,
    readyAt: meta.r ?? 0,
    deliveries: 0,
    state: DONE,
    lastError: null,
    anchor,
    leaseSeq: 0,
    leaseExpiresAt: 0,
    deliveredAt: 0,
    receipt: '',
    worker: '',
    leased: false,
  };
}

