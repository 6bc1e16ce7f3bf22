import {
  AckPolicy,
  createInbox,
  DeliverPolicy,
  DiscardPolicy,
  headers as natsHeaders,
  JSONCodec,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type Msg,
  type MsgHdrs,
  type MsgRequest,
  type NatsConnection,
  type StreamConfig,
  type KV,
  type Subscription,
} from 'nats';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { InvalidArgumentError, StorageError } from '../../engine/index.js';
import { jsErrorCode, JsErr } from '../../engine/jetstream/nats-errors.js';
import { fullJitterDelay } from '../backoff.js';
import {
  assertValidQueueName,
  DEFAULT_QUEUE_CONFIG,
  MAX_MESSAGE_BYTES,
  MAX_RECEIVE,
  MAX_VISIBILITY_MS,
  MAX_WAITERS_PER_QUEUE,
  resolveQueueConfig,
} from '../config.js';
import { QueueClosedError, QueueFullError, QueueNotFoundError, TooManyWaitersError, UnknownReceiptError } from '../errors.js';
import type { QueueObserver } from '../queue.js';
import type { QueueService } from '../service.js';
import type {
  DeadLetter,
  DeadLetterReason,
  DeadLetterSelection,
  Delivery,
  EnqueueMessage,
  QueueConfig,
  QueueConfigInput,
  QueueStats,
  ReceiveOptions,
} from '../types.js';
import {
  ackSubject,
  ADVISORY_CONSUMER,
  advisoryDeliverSubject,
  advisoryGroup,
  allQueueSubjects,
  deliveredFromAckSubject,
  leaseExtensionBucket,
  maxDeliveriesAdvisory,
  QUEUE_CONSUMER,
  queueNames,
  receiptKeyBucket,
  type QueueNames,
} from './names.js';
import { LeaseExtensions } from './lease-extensions.js';
import { deadlineOf, RECEIPT_KEY_BYTES, ReceiptCodec, type Delivered, type Receipt } from './receipts.js';
import { ReplyPipeline } from './reply-pipeline.js';

/** Message headers Brook adds (docs/queues.md, "JetStream-native backend"). */
const H = {
  enqueuedAt: 'Brook-Enqueued-At',
  deliverAfter: 'Brook-Deliver-After',
  key: 'Brook-Key',
  reason: 'Brook-Reason',
  lastError: 'Brook-Last-Error',
  deliveries: 'Brook-Deliveries',
  deadLetteredAt: 'Brook-Dead-Lettered-At',
  id: 'Brook-Id',
} as const;

/** Marks the stream description that carries the queue name and configuration (stream metadata needs nats-server 2.10). */
const DESCRIPTION_TAG = 'brook-queue:';
/** Queue configurations are re-read from the stream after this long, so other nodes' changes arrive. */
const CONFIG_CACHE_MS = 2_000;
const MAX_CACHED_QUEUES = 10_000;
/** A settle that JetStream does not confirm within this long is refused as UNKNOWN_RECEIPT. */
const SETTLE_TIMEOUT_MS = 2_000;
/** Dead letters a list, redrive or delete by age walks at most per call. */
const MAX_DEAD_LETTER_SCAN = 100_000;
const DLQ_DUPLICATE_WINDOW_MS = 120_000;
/** How long an aborted pull keeps releasing messages JetStream had already sent it. */
const LATE_MESSAGE_GRACE_MS = 2_000;
/** Bound of the lease-extension bucket (about 100 bytes an entry); past it extensions go unrecorded. */
const MAX_LEASE_EXTENSION_BYTES = 64 * 1024 * 1024;
/** KV key of the receipt HMAC key in its bucket. */
const RECEIPT_KEY = 'hmac-sha256';

/**
 * The lease a receipt states: the queue's visibility, less a margin for the time between
 * JetStream starting its ack-wait timer (when it sent the message) and this node stamping the
 * delivery, so the receipt's deadline never falls after JetStream's redelivery.
 */
const receiptLeaseMs = (visibilityMs: number): number => visibilityMs - Math.min(500, Math.floor(visibilityMs / 20));

export interface JetStreamQueueServiceOptions {
  /** An open connection (the JetStream engine's: `engine.natsAccess()`); not closed by `close()`. */
  readonly nc: NatsConnection;
  /** The engine's prefix; every Brook node with the same prefix serves the same queues. */
  readonly prefix: string;
  /** @defaultValue 1 */
  readonly replicas?: number;
  /** @defaultValue 5_000 */
  readonly requestTimeoutMs?: number;
  readonly logger?: Logger;
  readonly observer?: QueueObserver;
  /** @defaultValue Date.now */
  readonly clock?: () => number;
  /** Backoff jitter. @defaultValue Math.random */
  readonly random?: () => number;
  /** Enqueue to an unknown queue creates it with the defaults. @defaultValue true */
  readonly autoCreate?: boolean;
}

/** A receipt as the caller sent it, and what it says. */
interface CurrentReceipt {
  readonly raw: string;
  readonly receipt: Receipt;
}

/** The prefix's receipt key: created by the first node to open (atomically), read by the others. */
async function receiptKey(kv: KV, bucket: string): Promise<Buffer> {
  try {
    await kv.create(RECEIPT_KEY, randomBytes(RECEIPT_KEY_BYTES).toString('base64'));
  } catch (err) {
    if (jsErrorCode(err) !== JsErr.WrongLastSequence) throw err;
  }
  const entry = await kv.get(RECEIPT_KEY);
  const key = entry?.operation === 'PUT' ? Buffer.from(entry.string(), 'base64') : null;
  if (key === null || key.length !== RECEIPT_KEY_BYTES) {
    throw new StorageError(`the receipt key in KV bucket ${bucket} is missing or malformed; delete the bucket to make a new one`);
  }
  return key;
}

interface QueueHandle {
  readonly name: string;
  readonly names: QueueNames;
  readonly config: QueueConfig;
  readonly loadedAt: number;
}

/**
 * Work queues mapped onto JetStream (docs/queues.md, "JetStream-native backend"): a WorkQueue
 * stream per queue, one durable pull consumer shared by every Brook node, JetStream acks, naks
 * with delay, ack-wait leases and max-deliver; Brook adds dead-letter routing, jittered nack
 * backoff and deliver-after delays, and keeps no queue state of its own beyond a config cache.
 *
 * @example
 * const queues = await JetStreamQueueService.open({ ...engine.natsAccess(), logger });
 * await queues.enqueue('emails', [{ value: Buffer.from('{}') }]);
 */
export class JetStreamQueueService implements QueueService {
  private readonly nc: NatsConnection;
  private readonly prefix: string;
  private readonly replicas: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly observer: QueueObserver | undefined;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly autoCreate: boolean;
  private readonly handles = new Map<string, QueueHandle>();
  private readonly waiters = new Map<string, number>();
  private readonly jsonCodec = JSONCodec<Record<string, unknown>>();
  private jsm!: JetStreamManager;
  private js!: JetStreamClient;
  private advisories: Subscription | null = null;
  private replies!: ReplyPipeline;
  private receipts!: ReceiptCodec;
  private extensions!: LeaseExtensions;
  private readonly deadLettering = new Set<Promise<unknown>>();
  private closed = false;

  private constructor(options: JetStreamQueueServiceOptions) {
    this.nc = options.nc;
    this.prefix = options.prefix;
    this.replicas = options.replicas ?? 1;
    this.timeoutMs = options.requestTimeoutMs ?? 5_000;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'queues', backend: 'jetstream-native' });
    this.observer = options.observer;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.autoCreate = options.autoCreate ?? true;
  }

  static async open(options: JetStreamQueueServiceOptions): Promise<JetStreamQueueService> {
    const service = new JetStreamQueueService(options);
    service.jsm = await service.nc.jetstreamManager({ timeout: service.timeoutMs });
    service.js = service.nc.jetstream({ timeout: service.timeoutMs });
    service.replies = new ReplyPipeline(service.nc);
    const bucket = { history: 1, replicas: service.replicas, storage: StorageType.File, timeout: service.timeoutMs };
    const keyBucket = receiptKeyBucket(service.prefix);
    const keyKv = await service.js.views.kv(keyBucket, { ...bucket, description: 'Brook native queues: receipt HMAC key' });
    service.receipts = new ReceiptCodec(await receiptKey(keyKv, keyBucket));
    const leaseKv = await service.js.views.kv(leaseExtensionBucket(service.prefix), {
      ...bucket,
      ttl: MAX_VISIBILITY_MS,
      max_bytes: MAX_LEASE_EXTENSION_BYTES,
      description: 'Brook native queues: extended lease deadlines',
    });
    service.extensions = new LeaseExtensions(leaseKv, service.logger);
    // Each queue's DLQ stream captures its max-deliveries advisories and a durable push consumer
    // delivers them here, to one node of the group; the DLQ publish is deduplicated anyway.
    service.advisories = service.nc.subscribe(advisoryDeliverSubject(service.prefix), {
      queue: advisoryGroup(service.prefix),
      callback: (err, msg) => {
        if (!err) service.track(service.onMaxDeliveries(msg));
      },
    });
    return service;
  }

  // ---------------------------------------------------------------- configuration and catalog

  async configure(name: string, input: QueueConfigInput = {}): Promise<QueueConfig> {
    this.assertOpen();
    assertValidQueueName(name);
    const existing = await this.loadOrNull(name, true);
    const config = resolveQueueConfig(input, existing?.config ?? DEFAULT_QUEUE_CONFIG);
    assertNativeConfig(config);
    const names = queueNames(this.prefix, name);
    const stream: Partial<StreamConfig> & { name: string } = {
      name: names.stream,
      subjects: [names.subject],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: this.replicas,
      max_msgs: config.maxDepth,
      max_bytes: config.maxBytes,
      discard: DiscardPolicy.New,
      duplicate_window: nanos(config.dedupWindowMs),
      max_msg_size: MAX_MESSAGE_BYTES + 4_096,
      description: describeQueue(name, config),
    };
    const dlq: Partial<StreamConfig> & { name: string } = {
      name: names.dlqStream,
      subjects: [`${names.dlqSubject}.>`, maxDeliveriesAdvisory(names.stream)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: this.replicas,
      max_msgs: config.maxDeadLetters,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(DLQ_DUPLICATE_WINDOW_MS),
      description: describeQueue(name, null),
    };
    const consumer: Partial<ConsumerConfig> = {
      durable_name: QUEUE_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(config.visibilityMs),
      max_deliver: config.maxDeliveries,
      // Messages nacked with a delay stay in the ack-pending set: no bound besides the stream's.
      max_ack_pending: -1,
      // Parked pulls (long polls) of all nodes together; fixed at creation (JetStream default 512).
      max_waiting: MAX_WAITERS_PER_QUEUE,
    };
    await this.upsertStream(dlq);
    await this.upsertStream(stream);
    await this.upsertConsumer(names.stream, QUEUE_CONSUMER, consumer);
    await this.upsertConsumer(names.dlqStream, ADVISORY_CONSUMER, {
      durable_name: ADVISORY_CONSUMER,
      deliver_subject: advisoryDeliverSubject(this.prefix),
      deliver_group: advisoryGroup(this.prefix),
      filter_subject: maxDeliveriesAdvisory(names.stream),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.timeoutMs * 6),
      deliver_policy: DeliverPolicy.All,
    });
    this.remember({ name, names, config, loadedAt: this.clock() });
    return config;
  }

  private async upsertStream(config: Partial<StreamConfig> & { name: string }): Promise<void> {
    try {
      await this.jsm.streams.add(config);
    } catch (err) {
      if (jsErrorCode(err) !== JsErr.StreamNameInUse) throw err;
      await this.jsm.streams.update(config.name, config);
    }
  }

  private async upsertConsumer(stream: string, durable: string, config: Partial<ConsumerConfig>): Promise<void> {
    try {
      await this.jsm.consumers.info(stream, durable);
    } catch {
      try {
        await this.jsm.consumers.add(stream, config);
        return;
      } catch {
        // created by another node meanwhile: update below
      }
    }
    await this.jsm.consumers.update(stream, durable, config);
  }

  private remember(handle: QueueHandle): void {
    if (this.handles.size >= MAX_CACHED_QUEUES && !this.handles.has(handle.name)) this.handles.clear();
    this.handles.set(handle.name, handle);
  }

  private async loadOrNull(name: string, fresh = false): Promise<QueueHandle | null> {
    const cached = this.handles.get(name);
    if (cached && !fresh && this.clock() - cached.loadedAt < CONFIG_CACHE_MS) return cached;
    const names = queueNames(this.prefix, name);
    try {
      const info = await this.jsm.streams.info(names.stream);
      const stored = queueOfStream(info.config.description)?.config;
      const config = stored ? resolveQueueConfig(stored) : DEFAULT_QUEUE_CONFIG;
      const handle = { name, names, config, loadedAt: this.clock() };
      this.remember(handle);
      return handle;
    } catch (err) {
      if (jsErrorCode(err) !== JsErr.StreamNotFound) throw err;
      this.handles.delete(name);
      return null;
    }
  }

  private async load(name: string): Promise<QueueHandle> {
    this.assertOpen();
    assertValidQueueName(name);
    const handle = await this.loadOrNull(name);
    if (!handle) throw new QueueNotFoundError(name);
    return handle;
  }

  async deleteQueue(name: string): Promise<void> {
    const handle = await this.load(name);
    this.handles.delete(name);
    let found = false;
    for (const stream of [handle.names.stream, handle.names.dlqStream]) {
      try {
        await this.jsm.streams.delete(stream);
        found = true;
      } catch (err) {
        if (jsErrorCode(err) !== JsErr.StreamNotFound) throw err;
      }
    }
    if (!found) throw new QueueNotFoundError(name);
  }

  async list(): Promise<QueueStats[]> {
    this.assertOpen();
    const names: string[] = [];
    for await (const info of this.jsm.streams.list(allQueueSubjects(this.prefix))) {
      const name = queueOfStream(info.config.description)?.name;
      if (name !== undefined) names.push(name);
    }
    const out: QueueStats[] = [];
    for (const name of names.sort()) {
      try {
        out.push(await this.describe(name));
      } catch (err) {
        if (!(err instanceof QueueNotFoundError)) throw err; // deleted meanwhile
      }
    }
    return out;
  }

  async describe(name: string): Promise<QueueStats> {
    const handle = await this.load(name);
    try {
      const [stream, consumer, dlq] = await Promise.all([
        this.jsm.streams.info(handle.names.stream),
        this.jsm.consumers.info(handle.names.stream, QUEUE_CONSUMER),
        this.jsm.streams.info(handle.names.dlqStream),
      ]);
      const depth = stream.state.messages;
      const firstTs = Date.parse(stream.state.first_ts);
      return {
        name,
        config: handle.config,
        depth,
        bytes: stream.state.bytes,
        ready: consumer.num_pending,
        inFlight: consumer.num_ack_pending,
        delayed: 0,
        deadLetters: dlq.state.messages,
        oldestAgeMs: depth > 0 && Number.isFinite(firstTs) ? Math.max(0, this.clock() - firstTs) : 0,
        deliveries: consumer.delivered.consumer_seq,
        redeliveries: consumer.num_redelivered,
        acked: consumer.ack_floor.consumer_seq,
        deadLettered: dlq.state.last_seq,
      };
    } catch (err) {
      throw this.notFoundOr(name, err);
    }
  }

  // ---------------------------------------------------------------- enqueue and receive

  async enqueue(name: string, messages: readonly EnqueueMessage[]): Promise<string[]> {
    this.assertOpen();
    assertValidQueueName(name);
    try {
      return await this.enqueueOnce(name, messages);
    } catch (err) {
      // Deleted by another node while this one still had it cached: create it again, as when unknown.
      if (!(err instanceof QueueNotFoundError) || !this.autoCreate) throw err;
      return this.enqueueOnce(name, messages);
    }
  }

  private async enqueueOnce(name: string, messages: readonly EnqueueMessage[]): Promise<string[]> {
    let handle = await this.loadOrNull(name);
    if (!handle) {
      if (!this.autoCreate) throw new QueueNotFoundError(name);
      await this.configure(name);
      handle = await this.load(name);
    }
    const now = this.clock();
    const subject = handle.names.subject;
    const requests = messages.map((m) => ({ subject, ...this.prepare(handle, m, now) }));
    const replies = await this.replies.requestAll(requests, this.timeoutMs);
    const ids: string[] = [];
    let failure: Error | null = null;
    for (const reply of replies) {
      const outcome = pubAck(reply);
      if (typeof outcome === 'number') ids.push(String(outcome));
      else failure ??= outcome;
    }
    if (failure) {
      // JetStream stores each message on its own: the others may be queued.
      const partly = ids.length === 0 ? '' : `; ${ids.length} of ${replies.length} were enqueued (ids ${ids.join(', ').slice(0, 200)})`;
      throw this.publishError(name, failure, partly);
    }
    return ids;
  }

  private prepare(handle: QueueHandle, m: EnqueueMessage, now: number): { data: Uint8Array; headers: MsgHdrs } {
    if (m.deadline !== undefined) throw new InvalidArgumentError('deadline is not supported by the JetStream-native queue backend (JetStream has no EDF order)');
    if ((m.priority ?? 0) !== 0) throw new InvalidArgumentError('priority is not supported by the JetStream-native queue backend (JetStream delivers in stream order)');
    if (m.ttlMs !== undefined) throw new InvalidArgumentError('ttl_ms is not supported by the JetStream-native queue backend');
    if (m.value.byteLength > MAX_MESSAGE_BYTES) throw new InvalidArgumentError(`a message is at most ${MAX_MESSAGE_BYTES} bytes`);
    const hdrs = natsHeaders();
    hdrs.set(H.enqueuedAt, String(now));
    if (m.delayMs !== undefined) {
      if (!Number.isSafeInteger(m.delayMs) || m.delayMs < 0) throw new InvalidArgumentError('delay_ms must be a non-negative integer');
      if (m.delayMs > 0) {
        if (handle.config.maxDeliveries < 2) {
          throw new InvalidArgumentError('a delayed message needs max_deliveries >= 2 on the JetStream-native backend (its early delivery counts one)');
        }
        hdrs.set(H.deliverAfter, String(now + m.delayMs));
      }
    }
    if (m.key !== undefined) hdrs.set(H.key, m.key);
    if (m.dedupId !== undefined) hdrs.set('Nats-Msg-Id', m.dedupId);
    return { data: m.value, headers: hdrs };
  }

  async receive(name: string, options: ReceiveOptions = {}, waitMs = 0, signal?: AbortSignal): Promise<Delivery[]> {
    const handle = await this.load(name);
    const max = options.max ?? 10;
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_RECEIVE) throw new InvalidArgumentError(`max must be an integer in [1, ${MAX_RECEIVE}]`);
    const deadline = this.clock() + Math.max(0, waitMs);
    let out = this.deliveries(handle, await this.pull(handle, max, 0, signal));
    while (out.length === 0 && !signal?.aborted && this.clock() < deadline) {
      const waiting = this.waiters.get(name) ?? 0;
      if (waiting >= MAX_WAITERS_PER_QUEUE) throw new TooManyWaitersError(name);
      this.waiters.set(name, waiting + 1);
      let first: Msg[];
      try {
        first = await this.pull(handle, 1, deadline - this.clock(), signal);
      } finally {
        const left = (this.waiters.get(name) ?? 1) - 1;
        if (left === 0) this.waiters.delete(name);
        else this.waiters.set(name, left);
      }
      out = this.deliveries(handle, first);
      if (out.length > 0 && max > 1) out.push(...this.deliveries(handle, await this.pull(handle, max - 1, 0, signal)));
    }
    if (out.length > 0) this.observer?.delivered(name, out.length, out.filter((d) => d.deliveries > 1).length);
    return out;
  }

  /**
   * One pull request on the shared consumer: `no_wait` when `expiresMs` is 0, else it waits that
   * long for `batch` messages. Resolves with what arrived when JetStream ends the request (404,
   * 408, 409), the batch is full, or `signal` aborts.
   */
  private pull(handle: QueueHandle, batch: number, expiresMs: number, signal: AbortSignal | undefined): Promise<Msg[]> {
    return new Promise((resolve, reject) => {
      const out: Msg[] = [];
      const inbox = createInbox();
      let done = false;
      // Ended by JetStream (terminal status or a full batch): nothing more comes, unsubscribe.
      // Ended by us (abort, timeout): a message may still be on its way; keep listening briefly
      // and release what arrives, so it is not held for a whole lease.
      const finish = (err?: Error, ended = true): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (ended) sub.unsubscribe();
        else setTimeout(() => sub.unsubscribe(), LATE_MESSAGE_GRACE_MS).unref();
        signal?.removeEventListener('abort', onAbort);
        if (err && out.length === 0) reject(err);
        else resolve(out);
      };
      const onAbort = (): void => finish(undefined, false);
      const sub = this.nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return finish(this.notFoundOr(handle.name, err));
          const code = msg.headers?.code ?? 0;
          if (done) {
            if (code >= 100 && msg.data.length === 0) {
              if (code !== 100) sub.unsubscribe();
            } else if (msg.reply) this.nc.publish(msg.reply, '-NAK');
            return;
          }
          if (code >= 100 && msg.data.length === 0) {
            if (code === 100) return; // heartbeat
            if (code === 503) return finish(new QueueNotFoundError(handle.name));
            if (code === 409) {
              // "Exceeded MaxWaiting": too many parked pulls on the consumer (all nodes together).
              // "Consumer Deleted": the queue was deleted. Either way, not a reason to pull again at once.
              const text = msg.headers?.description ?? '';
              return finish(/MaxWaiting/i.test(text) ? new TooManyWaitersError(handle.name) : /deleted/i.test(text) ? new QueueNotFoundError(handle.name) : undefined);
            }
            return finish(); // 404 no messages, 408 expired
          }
          out.push(msg);
          if (out.length >= batch) finish();
        },
      });
      const timer = setTimeout(() => finish(undefined, false), expiresMs + this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const request = expiresMs > 0 ? { batch, expires: nanos(Math.max(1, Math.floor(expiresMs))) } : { batch, no_wait: true };
      this.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${handle.names.stream}.${QUEUE_CONSUMER}`, this.jsonCodec.encode(request), { reply: inbox });
    });
  }

  /** Turns pulled messages into deliveries; a delayed message met early is nacked for the rest of its delay. */
  private deliveries(handle: QueueHandle, msgs: readonly Msg[]): Delivery[] {
    const now = this.clock();
    const leaseMs = receiptLeaseMs(handle.config.visibilityMs);
    const out: Delivery[] = [];
    for (const msg of msgs) {
      const receipt = msg.reply ? deliveredFromAckSubject(msg.reply) : null;
      if (!receipt || !msg.reply) continue;
      // A delayed message always spends its first delivery here (early: naked for the rest of its
      // delay; already due: naked for immediate redelivery), so its worker deliveries are exactly
      // JetStream's count minus one, whoever pulled it and when.
      const deliverAfter = Number(msg.headers?.get(H.deliverAfter) || 0);
      if (deliverAfter > 0 && (deliverAfter > now || receipt.deliveries === 1)) {
        this.nc.publish(msg.reply, deliverAfter > now ? `-NAK ${JSON.stringify({ delay: nanos(deliverAfter - now) })}` : '-NAK');
        continue;
      }
      const key = msg.headers?.get(H.key) || null;
      out.push({
        id: String(receipt.streamSeq),
        receipt: this.receipts.format(handle.name, { ...receipt, deliveredAt: now, leaseMs }),
        // The early delivery of a delayed message is JetStream's, not a worker's.
        deliveries: deliverAfter > 0 ? receipt.deliveries - 1 : receipt.deliveries,
        value: msg.data,
        key,
        enqueuedAt: Number(msg.headers?.get(H.enqueuedAt) || 0),
        deadline: null,
        priority: 0,
        leaseExpiresAt: now + leaseMs,
      });
    }
    return out;
  }

  // ---------------------------------------------------------------- settling

  async ack(name: string, receipts: readonly string[]): Promise<void> {
    const handle = await this.load(name);
    const { current, failed } = await this.current(handle, receipts);
    const refused = await this.settle(handle, current, () => '+ACK');
    if (this.observer) {
      // Processing time from the delivery time in the receipt (the delivering node's clock).
      const now = this.clock();
      const refusedSet = new Set(refused);
      const times = current.filter((c) => !refusedSet.has(c.raw)).map((c) => Math.max(0, now - c.receipt.deliveredAt));
      if (times.length > 0) this.observer.acked(name, times);
    }
    this.refuse([...failed, ...refused], receipts.length, 'acknowledged');
  }

  /**
   * Restarts each lease for the queue's visibility (`+WPI`; JetStream's ack wait is per
   * consumer, so `visibilityMs` cannot differ) and records the new deadline, so the unchanged
   * receipt stays valid past the deadline it carries.
   */
  async extend(name: string, receipts: readonly string[]): Promise<void> {
    const handle = await this.load(name);
    const { current, failed } = await this.current(handle, receipts);
    const sentAt = this.clock();
    const refused = await this.settle(handle, current, () => '+WPI');
    const refusedSet = new Set(refused);
    const deadline = sentAt + receiptLeaseMs(handle.config.visibilityMs);
    await Promise.all(current.filter((c) => !refusedSet.has(c.raw)).map((c) => this.extensions.record(name, c.receipt, deadline)));
    this.refuse([...failed, ...refused], receipts.length, 'extended');
  }

  async nack(name: string, receipts: readonly string[], delayMs?: number, error?: string): Promise<void> {
    const handle = await this.load(name);
    if (delayMs !== undefined && (!Number.isSafeInteger(delayMs) || delayMs < 0)) throw new InvalidArgumentError('delay_ms must be a non-negative integer');
    const { current, failed } = await this.current(handle, receipts);
    const last = current.filter((c) => c.receipt.deliveries >= handle.config.maxDeliveries);
    const others = current.filter((c) => c.receipt.deliveries < handle.config.maxDeliveries);
    const refused = await this.settle(handle, others, (r) => {
      const delay = delayMs ?? fullJitterDelay(handle.config.backoff, r.deliveries, this.random);
      return delay > 0 ? `-NAK ${JSON.stringify({ delay: nanos(delay) })}` : '-NAK';
    });
    // Their last delivery failed: dead-lettered with this error.
    refused.push(...(await this.deadLetterReceipts(handle, last, 'MAX_DELIVERIES', error ?? null)));
    this.refuse([...failed, ...refused], receipts.length, 'released');
  }

  async reject(name: string, receipts: readonly string[], error?: string): Promise<void> {
    const handle = await this.load(name);
    const { current, failed } = await this.current(handle, receipts);
    const refused = await this.deadLetterReceipts(handle, current, 'REJECTED', error ?? null);
    this.refuse([...failed, ...refused], receipts.length, 'rejected');
  }

  /**
   * Splits receipts into current leases and the rest: a receipt that does not parse or whose MAC
   * is not this prefix's for this queue (forged, altered, or of another queue), or whose lease
   * deadline has passed without an extension covering now. Checked here because JetStream 2.9
   * confirms an ack of a stale delivery (docs/queues.md, "Receipts and late acks").
   */
  private async current(handle: QueueHandle, raws: readonly string[]): Promise<{ current: CurrentReceipt[]; failed: string[] }> {
    const now = this.clock();
    const current: CurrentReceipt[] = [];
    const failed: string[] = [];
    const late: CurrentReceipt[] = [];
    for (const raw of raws) {
      const receipt = this.receipts.parse(handle.name, raw);
      if (receipt === null) failed.push(raw);
      else if (deadlineOf(receipt) >= now) current.push({ raw, receipt });
      else late.push({ raw, receipt });
    }
    const extended = await Promise.all(late.map((c) => this.extensions.deadline(handle.name, c.receipt)));
    late.forEach((c, i) => {
      const deadline = extended[i];
      if (deadline !== null && deadline !== undefined && deadline >= now) current.push(c);
      else failed.push(c.raw);
    });
    return { current, failed };
  }

  /**
   * Sends each receipt's ack payload to its ack subject as a request, so JetStream confirms it;
   * resolves to the receipts that were not confirmed. `payload` gives the ack body.
   */
  private async settle(handle: QueueHandle, receipts: readonly CurrentReceipt[], payload: (r: Receipt) => string): Promise<string[]> {
    const requests = receipts.map((c) => ({ subject: ackSubject(handle.names.stream, c.receipt), data: payload(c.receipt) }));
    const replies = await this.replies.requestAll(requests, Math.min(this.timeoutMs, SETTLE_TIMEOUT_MS));
    const failed: string[] = [];
    replies.forEach((reply, i) => {
      // No reply in time, or a status (503: nothing consumes that ack subject any more).
      if (reply === null || (reply.headers?.code ?? 0) >= 300) failed.push(receipts[i]!.raw);
    });
    return failed;
  }

  private refuse(failed: readonly string[], total: number, verb: string): void {
    if (failed.length === 0) return;
    throw new UnknownReceiptError(
      failed,
      `${failed.length} of ${total} receipts are not current leases (unknown, expired, or already settled)` +
        (failed.length < total ? `; the other ${total - failed.length} were ${verb}` : ''),
    );
  }

  // ---------------------------------------------------------------- dead letters

  private async deadLetterReceipts(handle: QueueHandle, receipts: readonly CurrentReceipt[], reason: DeadLetterReason, error: string | null): Promise<string[]> {
    const failed: string[] = [];
    for (const { raw, receipt: r } of receipts) {
      const moved = await this.moveToDeadLetters(handle, r.streamSeq, reason, error, r.deliveries, r);
      if (!moved) failed.push(raw);
    }
    return failed;
  }

  /**
   * Copies message `seq` to the DLQ stream (deduplicated by its sequence, so a repeat from
   * another node or a retry is harmless), terminates the delivery when a receipt is at hand, and
   * deletes the message from the queue. False when the message is no longer in the queue.
   */
  private async moveToDeadLetters(
    handle: QueueHandle,
    seq: number,
    reason: DeadLetterReason,
    error: string | null,
    deliveries: number,
    receipt: Delivered | null,
  ): Promise<boolean> {
    let stored;
    try {
      stored = await this.jsm.streams.getMessage(handle.names.stream, { seq });
    } catch {
      return false; // acked, dead-lettered by another node, or the queue is gone
    }
    const hdrs = natsHeaders();
    const delayed = stored.header?.get(H.deliverAfter);
    hdrs.set(H.id, String(seq));
    hdrs.set(H.reason, reason);
    hdrs.set(H.deliveries, String(delayed ? Math.max(1, deliveries - 1) : deliveries));
    hdrs.set(H.enqueuedAt, stored.header?.get(H.enqueuedAt) || String(stored.time.getTime()));
    hdrs.set(H.deadLetteredAt, String(this.clock()));
    if (error !== null) hdrs.set(H.lastError, error.replace(/[\r\n]+/g, ' ').slice(0, 2_048));
    const key = stored.header?.get(H.key);
    if (key) hdrs.set(H.key, key);
    await this.js.publish(`${handle.names.dlqSubject}.${seq}`, stored.data, { headers: hdrs, msgID: String(seq) });
    if (receipt) {
      try {
        await this.nc.request(ackSubject(handle.names.stream, receipt), '+TERM', { timeout: Math.min(this.timeoutMs, SETTLE_TIMEOUT_MS) });
      } catch {
        // the delivery is gone already (lease expired); deleting the message below suffices
      }
    }
    try {
      await this.jsm.streams.deleteMessage(handle.names.stream, seq, false);
    } catch {
      // already removed (the +TERM of a work-queue message, or another node)
    }
    this.observer?.deadLettered(handle.name, reason, 1);
    return true;
  }

  /**
   * A captured `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.brook` (a lease expired on the
   * last delivery), delivered by a DLQ stream's advisory consumer: dead-letter the message, then
   * ack the advisory and delete it from the DLQ stream. On failure it is not acked, so JetStream
   * delivers it again (to this or another node).
   */
  private async onMaxDeliveries(msg: Msg): Promise<void> {
    try {
      const event = this.jsonCodec.decode(msg.data);
      const stream = event['stream'];
      const seq = event['stream_seq'];
      const deliveries = event['deliveries'];
      if (typeof stream === 'string' && stream.startsWith(`${this.prefix}__q_`) && typeof seq === 'number') {
        const info = await this.jsm.streams.info(stream).catch(() => null); // queue deleted: nothing to move
        const name = queueOfStream(info?.config.description)?.name;
        const handle = name === undefined ? null : await this.loadOrNull(name);
        if (handle) {
          const count = typeof deliveries === 'number' ? deliveries : handle.config.maxDeliveries;
          await this.moveToDeadLetters(handle, seq, 'MAX_DELIVERIES', 'lease expired on the last delivery', count, null);
        }
      }
      const captured = msg.reply ? deliveredFromAckSubject(msg.reply) : null;
      const dlqStream = msg.reply?.split('.')[2];
      if (msg.reply) this.nc.publish(msg.reply, '+ACK');
      if (captured && dlqStream) await this.jsm.streams.deleteMessage(dlqStream, captured.streamSeq, false).catch(() => false);
    } catch (err) {
      this.logger.warn({ err }, 'could not dead-letter a message after its last delivery; JetStream delivers the advisory again');
    }
  }

  private track(work: Promise<unknown>): void {
    this.deadLettering.add(work);
    void work.finally(() => this.deadLettering.delete(work));
  }

  /** Waits for advisory-driven dead-lettering in progress (tests). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.deadLettering]);
  }

  /** Visits dead letters in DLQ order from `fromSeq`; `visit` returns false to stop. */
  private async scanDeadLetters(handle: QueueHandle, fromSeq: number, visit: (letter: DeadLetter, dlqSeq: number) => boolean): Promise<void> {
    let seq = fromSeq;
    for (let scanned = 0; scanned < MAX_DEAD_LETTER_SCAN; scanned++) {
      let stored;
      try {
        stored = await this.jsm.streams.getMessage(handle.names.dlqStream, { seq, next_by_subj: `${handle.names.dlqSubject}.>` } as unknown as MsgRequest);
      } catch (err) {
        if (jsErrorCode(err) === JsErr.StreamNotFound) throw new QueueNotFoundError(handle.name);
        return; // no message at or after seq
      }
      if (!visit(deadLetterFrom(stored.header, stored.data), stored.seq)) return;
      seq = stored.seq + 1;
    }
  }

  private async findDeadLetter(handle: QueueHandle, id: string): Promise<{ letter: DeadLetter; dlqSeq: number } | undefined> {
    if (!/^\d{1,16}$/.test(id)) return undefined;
    try {
      const stored = await this.jsm.streams.getMessage(handle.names.dlqStream, { last_by_subj: `${handle.names.dlqSubject}.${id}` });
      return { letter: deadLetterFrom(stored.header, stored.data), dlqSeq: stored.seq };
    } catch {
      return undefined;
    }
  }

  async deadLetters(name: string, limit = 100, after?: string): Promise<DeadLetter[]> {
    const handle = await this.load(name);
    let from = 1;
    if (after !== undefined) {
      const found = await this.findDeadLetter(handle, after);
      if (!found) return [];
      from = found.dlqSeq + 1;
    }
    const out: DeadLetter[] = [];
    await this.scanDeadLetters(handle, from, (letter) => {
      out.push(letter);
      return out.length < limit;
    });
    return out;
  }

  async deadLetter(name: string, id: string): Promise<DeadLetter | undefined> {
    return (await this.findDeadLetter(await this.load(name), id))?.letter;
  }

  private async select(handle: QueueHandle, selection: DeadLetterSelection): Promise<{ letter: DeadLetter; dlqSeq: number }[]> {
    if ('ids' in selection) {
      const out = [];
      for (const id of selection.ids) {
        const found = await this.findDeadLetter(handle, id);
        if (found) out.push(found);
      }
      return out;
    }
    const cutoff = 'olderThanMs' in selection ? this.clock() - selection.olderThanMs : Number.POSITIVE_INFINITY;
    const out: { letter: DeadLetter; dlqSeq: number }[] = [];
    await this.scanDeadLetters(handle, 1, (letter, dlqSeq) => {
      if (letter.deadLetteredAt <= cutoff) out.push({ letter, dlqSeq });
      return true;
    });
    return out;
  }

  async redrive(name: string, selection: DeadLetterSelection): Promise<string[]> {
    const handle = await this.load(name);
    const ids: string[] = [];
    for (const { letter, dlqSeq } of await this.select(handle, selection)) {
      const hdrs = natsHeaders();
      hdrs.set(H.enqueuedAt, String(this.clock()));
      if (letter.key !== null) hdrs.set(H.key, letter.key);
      try {
        const ack = await this.js.publish(handle.names.subject, letter.value, { headers: hdrs });
        ids.push(String(ack.seq));
      } catch (err) {
        throw this.publishError(name, err);
      }
      await this.deleteDlq(handle, dlqSeq);
    }
    return ids;
  }

  async deleteDeadLetters(name: string, selection: DeadLetterSelection): Promise<number> {
    const handle = await this.load(name);
    let deleted = 0;
    for (const { dlqSeq } of await this.select(handle, selection)) if (await this.deleteDlq(handle, dlqSeq)) deleted++;
    return deleted;
  }

  private async deleteDlq(handle: QueueHandle, seq: number): Promise<boolean> {
    try {
      return await this.jsm.streams.deleteMessage(handle.names.dlqStream, seq, false);
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- errors and lifecycle

  private publishError(name: string, err: unknown, partly = ''): Error {
    // JetStream puts the reason in api_error.description (`message` is just "503").
    const described = (err as { api_error?: { description?: unknown } } | null)?.api_error?.description;
    const text = typeof described === 'string' ? described : err instanceof Error ? err.message : String(err);
    if (/maximum messages/i.test(text)) return new QueueFullError(name, `max_depth messages${partly}`);
    if (/maximum bytes/i.test(text)) return new QueueFullError(name, `max_bytes${partly}`);
    return this.notFoundOr(name, err);
  }

  private notFoundOr(name: string, err: unknown): Error {
    // A bare 503 (no api_error) is "no responders": no stream listens on the queue's subject.
    const noResponders = (err as { code?: unknown } | null)?.code === '503' && jsErrorCode(err) === undefined;
    if (jsErrorCode(err) === JsErr.StreamNotFound || noResponders || jsErrorCode(err) === 10014) {
      this.handles.delete(name);
      return new QueueNotFoundError(name);
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private assertOpen(): void {
    if (this.closed) throw new QueueClosedError();
  }

  /** Stops the advisory subscription; does not close the connection (it belongs to the engine). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.advisories?.unsubscribe();
    await this.idle();
    this.replies.close();
  }
}

/** What JetStream cannot do is refused, never silently ignored (docs/queues.md). */
function assertNativeConfig(config: QueueConfig): void {
  const refuse = (what: string): never => {
    throw new InvalidArgumentError(`${what} is not supported by the JetStream-native queue backend (docs/queues.md)`);
  };
  if (config.balance !== 'round-robin') refuse(`balance ${config.balance}`);
  if (config.overflow !== 'reject') refuse(`overflow ${config.overflow}`);
  if (config.defaultTtlMs !== null) refuse('default_ttl_ms');
  if (config.maxInFlightPerWorker !== DEFAULT_QUEUE_CONFIG.maxInFlightPerWorker) refuse('max_in_flight_per_worker');
}

function deadLetterFrom(hdrs: MsgHdrs | undefined, data: Uint8Array): DeadLetter {
  const num = (name: string): number => Number(hdrs?.get(name) || 0);
  return {
    id: hdrs?.get(H.id) || '0',
    value: data,
    key: hdrs?.get(H.key) || null,
    deliveries: num(H.deliveries),
    reason: (hdrs?.get(H.reason) || 'MAX_DELIVERIES') as DeadLetterReason,
    lastError: hdrs?.get(H.lastError) || null,
    enqueuedAt: num(H.enqueuedAt),
    deadLetteredAt: num(H.deadLetteredAt),
    deadline: null,
    priority: 0,
  };
}

/** The stream description: `brook-queue:` + JSON `{ name, config }` (every node reads the config from it). */
function describeQueue(name: string, config: QueueConfig | null): string {
  return DESCRIPTION_TAG + JSON.stringify(config ? { name, config } : { name });
}

function queueOfStream(description: string | undefined): { name: string; config?: QueueConfigInput } | null {
  if (!description?.startsWith(DESCRIPTION_TAG)) return null;
  try {
    const parsed = JSON.parse(description.slice(DESCRIPTION_TAG.length)) as { name?: unknown; config?: QueueConfigInput };
    return typeof parsed.name === 'string' ? { name: parsed.name, ...(parsed.config ? { config: parsed.config } : {}) } : null;
  } catch {
    return null;
  }
}

const UTF8 = new TextDecoder();

/** A PubAck: the stream sequence (also for a duplicate: the first one's), or the error JetStream gave. */
function pubAck(reply: Msg | null): number | Error {
  if (reply === null) return new Error('JetStream did not acknowledge the enqueue in time');
  if ((reply.headers?.code ?? 0) >= 300) return Object.assign(new Error('no responders'), { code: String(reply.headers!.code) });
  try {
    const ack = JSON.parse(UTF8.decode(reply.data)) as { seq?: unknown; error?: { code?: unknown; err_code?: unknown; description?: unknown } };
    if (ack.error === undefined && typeof ack.seq === 'number') return ack.seq;
    const description = typeof ack.error?.description === 'string' ? ack.error.description : 'JetStream refused the enqueue';
    return Object.assign(new Error(description), { code: String(ack.error?.code ?? ''), api_error: ack.error });
  } catch {
    return new Error('JetStream answered the enqueue with something that is not a PubAck');
  }
}
