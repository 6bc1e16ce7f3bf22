import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import {
  assertValidTopicName,
  BrookError,
  DEFAULT_TOPIC_CONFIG,
  isInternalTopic,
  InvalidArgumentError,
  PRODUCER_BATCH_MEMORY,
  recordBytes,
  type AppendResult,
  type Engine,
  type ProduceRecord,
  type ReadLimits,
  type ReadResult,
  type StoredBatchInfo,
  type StoredRecord,
} from '../engine/index.js';
import type { TopicAutoCreator } from './auto-create.js';
import { budgetedRead, type ReadBudget } from './read-budget.js';
import { INVALID_FRAME_LIMIT, MAX_GROUPS_PER_SESSION, SLOW_DOWN_MS } from './defaults.js';
import { StreamError, type FrameErrorCode, type SessionCloseReason } from './errors.js';
import {
  encodeFrame,
  parseClientFrame,
  recordsSchema,
  SERVER_FEATURES,
  BINARY_SERVER_FEATURES,
  BINARY_STORED_PRODUCE_FEATURES,
  unreachable,
  type ClientFrame,
  type CommitFrame,
  type Credits,
  type FetchFrame,
  type JoinFrame,
  type ProduceFrame,
  type RequestId,
  type SeekFrame,
  type ServerFrame,
  type SubscribeFrame,
} from './frames.js';
import { GroupMemberSession, offsetCommits, type GroupAnswer, type GroupHost } from './group-member-session.js';
import { QueueSession } from './queue-session.js';
import { QueueError, type QueueService } from '../queues/index.js';
import { resolveFrom } from './positions.js';
import type { RecordCodec } from './record-codec.js';
import { binaryRecordFrames, jsonRecordFrames, type OutboundFrame, type RecordFrames } from './record-frames.js';
import { BinaryFrameError, decodeProduceFrame, decodeProduceRecords } from './binary-frames.js';
import { Subscription, type SubscriptionSink, type SubscriptionStats } from './subscription.js';

/** The connection a session speaks over. The session never buffers outbound frames itself. */
export interface FrameTransport {
  /** A text frame, or a binary message (only on a `brook.v1.bin` connection). */
  send(frame: OutboundFrame): void;
  /** Bytes queued for sending and not yet handed to the OS. */
  readonly bufferedAmount: number;
  /** Ends the connection; the transport maps the reason to a close code. */
  close(reason: SessionCloseReason, message: string): void;
}

/** Bounds of one session; announced to the client in `welcome.limits` where the client must respect them. */
export interface StreamLimits {
  readonly maxFrameBytes: number;
  /** Unacknowledged produce frames; more are refused with RATE_LIMITED. */
  readonly maxInflightProduce: number;
  /** Unanswered requests of other types (fetch, subscribe, join, ...); more are refused with RATE_LIMITED. */
  readonly maxInflightRequests: number;
  /** Subscriptions opened with `subscribe` (group partitions are not counted). */
  readonly maxSubscriptions: number;
  readonly maxBatchRecords: number;
  /** Pushing pauses while the connection's send buffer holds more than this. */
  readonly maxBufferedBytes: number;
  readonly heartbeatMs: number;
  /** Caps of `fetch`: records, bytes and long-poll wait. */
  readonly maxFetchRecords: number;
  readonly maxFetchBytes: number;
  readonly maxWaitMs: number;
}

export interface StreamSessionOptions {
  readonly id: string;
  readonly engine: Engine;
  readonly logger: Logger;
  readonly codec: RecordCodec;
  /**
   * The negotiated subprotocol: `binary` (`brook.v1.bin`) accepts binary produce frames and
   * pushes records in binary frames; `json` refuses binary frames. @defaultValue 'json'
   */
  readonly encoding?: SessionEncoding;
  readonly transport: FrameTransport;
  readonly limits: StreamLimits;
  /** Creates unknown topics on produce; null answers TOPIC_NOT_FOUND instead. */
  readonly autoCreate: TopicAutoCreator | null;
  /**
   * Access control: throws (a StreamError with code FORBIDDEN) unless the connection may `read`
   * or `write` `topic`. Called before the topic is looked up. @defaultValue everything allowed
   */
  readonly authorize?: (action: TopicAction, topic: string) => void;
  /**
   * Produce flow control beyond the connection's own window (per-principal quotas, server-wide
   * bounds), asked with the validated batch before it is appended. Refused: the frame gets
   * RATE_LIMITED and the client a `slow_down`. @defaultValue everything admitted
   */
  readonly admitProduce?: (records: number, bytes: number) => ProduceAdmission;
  /** Bytes reads may hold at once, shared by every session (and HTTP). @defaultValue unbounded */
  readonly readBudget?: ReadBudget;
  /** Told about records appended and delivered (metrics). @defaultValue nobody */
  readonly observer?: StreamObserver;
  /** Work queues served over this session (queue frames); absent, they are refused. */
  readonly queues?: QueueService;
}

/** Watches what a session moves, for metrics; called synchronously, so it must be cheap. */
export interface StreamObserver {
  /** A produce frame of `records` records and `bytes` record bytes (recordBytes) was appended (not a duplicate), `seconds` after it was admitted. */
  produced(topic: string, records: number, bytes: number, seconds: number): void;
  /** The first `count` of `records` were sent, pushed or fetched. */
  delivered(topic: string, records: readonly StoredRecord[], count: number): void;
  /** `count` records of `bytes` record bytes were pushed in stored batches (not decoded). */
  deliveredCount?(topic: string, count: number, bytes: number): void;
}

/** Go ahead (and call `release` once the append is over), or wait `retryAfterMs` first. */
export type ProduceAdmission = { readonly release: () => void } | { readonly retryAfterMs: number };

export type TopicAction = 'read' | 'write';

export type SessionEncoding = 'json' | 'binary';

/**
 * A produce, from a JSON or a binary frame: the frame's fields, and its records still encoded
 * (decoded only once the frame is admitted, so an excess frame costs no validation).
 */
interface ProduceRequest {
  readonly id: RequestId;
  readonly topic: string;
  readonly partition?: number | undefined;
  readonly producer?: { readonly id: string; readonly sequence: number } | undefined;
  /** Answer a run of offsets in one partition as one object (docs/protocol.md, `compact_ack`). */
  readonly compactAck: boolean;
  readonly recordCount: number;
  /** The engine records; throws a StreamError (INVALID_FRAME) for malformed ones. */
  decode(): ProduceRecord[];
  /** Binary kind 0x05: the records as one client-built batch in the engine's stored layout (`decode` is not used). */
  readonly stored?: Uint8Array;
}

export interface StreamSessionStats {
  readonly session: string;
  /** The transport's send buffer (bytes). */
  readonly bufferedBytes: number;
  readonly inflightProduce: number;
  readonly inflightRequests: number;
  readonly subscriptions: readonly SubscriptionStats[];
  readonly groups: readonly string[];
}

/** A reply, and the subscriptions to start once it has been sent. */
type Answer = GroupAnswer;

const GROUP_SUB_PREFIX = 'group:';

/**
 * One client connection speaking the streaming protocol (docs/protocol.md), independent of the
 * transport: text frames come in through {@link handle}, frames go out through the
 * {@link FrameTransport}. Produce, fetch, subscriptions with credit-based push, and consumer
 * group memberships with server-side push of the assigned partitions.
 *
 * Every buffer is bounded: produce and other requests in flight by the limits (excess frames
 * are refused with RATE_LIMITED), subscriptions hold no records (see {@link Subscription}), and
 * pushing pauses while the transport's send buffer is over `maxBufferedBytes`.
 */
export class StreamSession implements SubscriptionSink, GroupHost {
  readonly id: string;
  readonly engine: Engine;
  readonly logger: Logger;
  private readonly codec: RecordCodec;
  private readonly encoding: SessionEncoding;
  private readonly frames: RecordFrames;
  private readonly transport: FrameTransport;
  private readonly limits: StreamLimits;
  private readonly autoCreate: TopicAutoCreator | null;
  private readonly authorize: (action: TopicAction, topic: string) => void;
  private readonly admitProduce: (records: number, bytes: number) => ProduceAdmission;
  private readonly observer: StreamObserver | undefined;
  private readonly readBudget: ReadBudget | undefined;
  private readonly subs = new Map<string, Subscription>();
  /** Subscriptions opened with `subscribe` (not group partitions), for the limit. */
  private ownSubs = 0;
  private readonly groups = new Map<string, GroupMemberSession>();
  private readonly parked = new Set<Subscription>();
  /** Aborts long polls when the session ends. */
  private readonly abort = new AbortController();
  private inflightProduce = 0;
  private inflightRequests = 0;
  private invalidInARow = 0;
  private lastSlowDownAt = Number.NEGATIVE_INFINITY;
  private closing: Promise<void> | undefined;
  private readonly queueSession: QueueSession | null;

  constructor(options: StreamSessionOptions) {
    this.id = options.id;
    this.engine = options.engine;
    this.logger = options.logger;
    this.codec = options.codec;
    this.encoding = options.encoding ?? 'json';
    this.frames = this.encoding === 'binary' ? binaryRecordFrames : jsonRecordFrames(this.codec);
    this.transport = options.transport;
    this.limits = options.limits;
    this.autoCreate = options.autoCreate;
    this.authorize = options.authorize ?? allowEverything;
    this.admitProduce = options.admitProduce ?? admitEverything;
    this.observer = options.observer;
    this.readBudget = options.readBudget;
    // One listener per pending long poll; their number is bounded by maxInflightRequests.
    setMaxListeners(0, this.abort.signal);
    this.queueSession =
      options.queues === undefined
        ? null
        : new QueueSession(
            options.queues,
            {
              id: this.id,
              logger: this.logger,
              send: (frame) => this.send(frame),
              canSend: () => this.writable,
              authorize: (action, name) => this.authorize(action, name),
              hasSubscription: (sub) => this.subs.has(sub),
              workFailed: (sub, err) => this.sendError(err, { sub }),
            },
            { maxBatchRecords: this.limits.maxBatchRecords, maxWaitMs: this.limits.maxWaitMs, maxWorkSubscriptions: this.limits.maxSubscriptions },
          );
  }

  /** Sends `welcome`; call once, before handing frames in. */
  start(): void {
    const l = this.limits;
    this.send({
      type: 'welcome',
      session: this.id,
      limits: {
        max_frame_bytes: l.maxFrameBytes,
        max_inflight_produce: l.maxInflightProduce,
        max_inflight_requests: l.maxInflightRequests,
        max_subscriptions: l.maxSubscriptions,
        max_record_bytes: DEFAULT_TOPIC_CONFIG.maxRecordBytes,
        max_batch_records: l.maxBatchRecords,
        heartbeat_ms: l.heartbeatMs,
        producer_batches: PRODUCER_BATCH_MEMORY,
      },
      features: this.encoding !== 'binary' ? SERVER_FEATURES : takesStoredBatches(this.engine) ? BINARY_STORED_PRODUCE_FEATURES : BINARY_SERVER_FEATURES,
    });
  }

  /** One inbound text frame. Never throws. */
  handle(text: string): void {
    if (this.closing) return;
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      this.refuse(parsed.id, parsed.message);
      return;
    }
    this.invalidInARow = 0;
    this.dispatch(parsed.frame);
  }

  /** One inbound binary frame: a produce on a `brook.v1.bin` connection, INVALID_FRAME otherwise. Never throws. */
  handleBinary(data: Uint8Array): void {
    if (this.closing) return;
    if (this.encoding !== 'binary') {
      this.refuse(undefined, 'binary frames are not supported on brook.v1.json: send JSON text frames, or connect with brook.v1.bin');
      return;
    }
    const decoded = decodeProduceFrame(data);
    if (!decoded.ok) {
      this.refuse(decoded.id, decoded.message);
      return;
    }
    this.invalidInARow = 0;
    const { header, recordCount, body } = decoded;
    this.produce({
      id: header.id,
      topic: header.topic,
      partition: header.partition,
      producer: header.producer,
      compactAck: header.compact_ack === true,
      recordCount,
      ...(decoded.stored ? { stored: body } : {}),
      decode: () => {
        try {
          return decodeProduceRecords(body, recordCount);
        } catch (err) {
          if (err instanceof BinaryFrameError) throw new StreamError('INVALID_FRAME', `invalid binary produce frame: ${err.message}`);
          throw err;
        }
      },
    });
  }

  /** The transport's send buffer drained: resume subscriptions paused on it. */
  drained(): void {
    this.queueSession?.drained();
    if (this.parked.size === 0) return;
    const parked = [...this.parked];
    this.parked.clear();
    for (const sub of parked) sub.resume();
  }

  /**
   * The connection is gone: stops every push and long poll at once and leaves every group
   * (after the group's earlier operations, such as commits, are done). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      for (const sub of this.subs.values()) sub.close();
      this.subs.clear();
      this.parked.clear();
      await Promise.all([...this.groups.values()].map((g) => g.close()));
      this.groups.clear();
      await this.queueSession?.close();
    })();
    return this.closing;
  }

  stats(): StreamSessionStats {
    return {
      session: this.id,
      bufferedBytes: this.transport.bufferedAmount,
      inflightProduce: this.inflightProduce,
      inflightRequests: this.inflightRequests,
      subscriptions: [...this.subs.values()].map((s) => s.stats()),
      groups: [...this.groups.keys()],
    };
  }

  // ── SubscriptionSink and GroupHost ──────────────────────────────────────────────────────

  get writable(): boolean {
    return this.transport.bufferedAmount <= this.limits.maxBufferedBytes;
  }

  parkUntilWritable(sub: Subscription): void {
    this.parked.add(sub);
  }

  subscriptionFailed(sub: Subscription, err: unknown): void {
    this.sendError(err, { sub: sub.sub });
  }

  send(frame: ServerFrame | OutboundFrame): void {
    this.transport.send(typeof frame === 'string' || frame instanceof Uint8Array ? frame : encodeFrame(frame));
  }

  openSubscription(sub: string, topic: string, partition: number, offset: number, credits: Credits, stored: boolean): Subscription {
    const subscription = new Subscription({
      sub,
      topic,
      partition,
      offset,
      credits,
      stored,
      engine: this.engine,
      frames: this.frames,
      sink: this,
      ...(this.observer === undefined ? {} : { observer: this.observer }),
      ...(this.readBudget === undefined ? {} : { readBudget: this.readBudget }),
    });
    if (this.closing) subscription.close();
    else this.subs.set(sub, subscription);
    return subscription;
  }

  closeSubscription(sub: Subscription): void {
    sub.close();
    if (this.subs.get(sub.sub) === sub) this.subs.delete(sub.sub);
    this.parked.delete(sub);
  }

  forget(group: GroupMemberSession): void {
    if (this.groups.get(group.group) === group) this.groups.delete(group.group);
  }

  // ── dispatch ────────────────────────────────────────────────────────────────────────────

  private dispatch(frame: ClientFrame): void {
    switch (frame.type) {
      case 'produce':
        return this.produce(this.jsonProduce(frame));
      case 'credit': {
        if (this.queueSession?.credit(frame.sub, frame.records ?? 0) === true) return;
        const sub = this.subs.get(frame.sub);
        if (sub) sub.addCredit(frame.records ?? 0, frame.bytes ?? 0);
        else this.sendError(notFound(frame.sub), { sub: frame.sub });
        return;
      }
      case 'subscribe':
        return this.request(frame.id, () => this.subscribe(frame));
      case 'unsubscribe':
        return this.request(frame.id, async () => this.unsubscribe(frame.id, frame.sub));
      case 'seek':
        return this.request(frame.id, () => this.seek(frame));
      case 'fetch':
        return this.request(frame.id, () => this.fetch(frame));
      case 'join':
        return this.request(frame.id, () => this.join(frame));
      case 'heartbeat': {
        const group = this.groups.get(frame.group);
        return this.request(frame.id, () =>
          group ? group.run(() => group.heartbeat(frame.id)) : Promise.reject(notMember(frame.group)),
        );
      }
      case 'commit':
        return this.request(frame.id, () => this.commit(frame));
      case 'leave': {
        const group = this.groups.get(frame.group);
        return this.request(frame.id, async () => {
          if (group) await group.run(() => group.leave());
          return { frame: { type: 'left', id: frame.id }, started: [] };
        });
      }
      case 'enqueue':
      case 'receive':
      case 'work':
      case 'stop_work':
      case 'ack':
      case 'nack':
      case 'extend':
      case 'reject': {
        const queues = this.queueSession;
        return this.request(frame.id, async () => {
          if (queues === null) throw new StreamError('INVALID_FRAME', 'this server does not serve work queues');
          return { frame: await queues.handle(frame), started: [] };
        });
      }
      default:
        return unreachable(frame);
    }
  }

  /** A malformed frame: answered with INVALID_FRAME; too many in a row end the connection. */
  private refuse(id: RequestId | undefined, message: string): void {
    this.send(id === undefined ? { type: 'error', code: 'INVALID_FRAME', message } : { type: 'error', id, code: 'INVALID_FRAME', message });
    if (++this.invalidInARow > INVALID_FRAME_LIMIT) {
      this.logger.debug({ session: this.id }, 'closing a connection that sent too many malformed frames');
      this.transport.close('INVALID_FRAME', `more than ${INVALID_FRAME_LIMIT} malformed frames in a row`);
      void this.close();
    }
  }

  /** Runs a request within the in-flight bound; its answer (or error) is sent, then its subscriptions start. */
  private request(id: RequestId, op: () => Promise<Answer>): void {
    if (this.inflightRequests >= this.limits.maxInflightRequests) {
      this.sendError(new StreamError('RATE_LIMITED', `more than ${this.limits.maxInflightRequests} requests in flight`), { id });
      return;
    }
    this.inflightRequests++;
    op()
      .then(
        (answer) => {
          if (this.closing) return;
          this.send(answer.frame);
          for (const sub of answer.started) sub.start();
        },
        (err: unknown) => {
          if (!this.closing) this.sendError(err, { id });
        },
      )
      .finally(() => this.inflightRequests--)
      .catch((err: unknown) => this.logger.error({ err, session: this.id }, 'could not answer a request'));
  }

  private sendError(err: unknown, context: { id?: RequestId; sub?: string }): void {
    let code: FrameErrorCode;
    let message: string;
    if (err instanceof StreamError || err instanceof BrookError || err instanceof QueueError) {
      code = err.code;
      message = err.message;
    } else {
      code = 'INTERNAL';
      message = 'internal server error';
    }
    if (code === 'INTERNAL' || code === 'CORRUPT_RECORD' || code === 'STORAGE_ERROR') {
      this.logger.error({ err, session: this.id, ...context, code }, 'stream request failed');
    } else {
      this.logger.debug({ session: this.id, ...context, code, message }, 'stream request refused');
    }
    this.send({ type: 'error', ...context, code, message });
  }

  // ── produce ─────────────────────────────────────────────────────────────────────────────

  /** A JSON produce frame: values are JSON, stored as the UTF-8 bytes of their JSON text (by the codec). */
  private jsonProduce(frame: ProduceFrame): ProduceRequest {
    return {
      id: frame.id,
      topic: frame.topic,
      partition: frame.partition,
      producer: frame.producer,
      compactAck: frame.compact_ack === true,
      recordCount: frame.records.length,
      decode: () => {
        const parsed = recordsSchema.safeParse(frame.records);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new StreamError('INVALID_FRAME', `invalid produce frame: records.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
        }
        return parsed.data.map((r) => this.codec.toProduceRecord(r));
      },
    };
  }

  private produce(frame: ProduceRequest): void {
    const max = this.limits.maxInflightProduce;
    if (this.inflightProduce >= max) {
      this.sendError(new StreamError('RATE_LIMITED', `more than ${max} produce frames in flight; nothing was appended`), { id: frame.id });
      this.slowDown(SLOW_DOWN_MS);
      return;
    }
    if (++this.inflightProduce === max) this.slowDown(SLOW_DOWN_MS);
    this.append(frame)
      .then(
        (reply) => {
          if (!this.closing) this.send(reply);
        },
        (err: unknown) => {
          if (!this.closing) this.sendError(err, { id: frame.id });
        },
      )
      .finally(() => this.inflightProduce--)
      .catch((err: unknown) => this.logger.error({ err, session: this.id }, 'could not answer a produce'));
  }

  /**
   * Asks the client to pause producing: its window is full, or a quota or server bound refused
   * a batch. At most one `slow_down` per SLOW_DOWN_MS, so a client that ignores them is not
   * flooded (its excess frames get RATE_LIMITED errors anyway).
   */
  private slowDown(retryAfterMs: number): void {
    const now = Date.now();
    if (now - this.lastSlowDownAt < SLOW_DOWN_MS) return;
    this.lastSlowDownAt = now;
    this.send({ type: 'slow_down', retry_after_ms: Math.max(1, Math.ceil(retryAfterMs)) });
  }

  private async append(frame: ProduceRequest): Promise<ServerFrame> {
    const topic = frame.topic;
    assertValidTopicName(topic);
    if (isInternalTopic(topic)) throw new StreamError('INVALID_TOPIC_NAME', 'topic names starting with "__" are reserved for Brook');
    this.authorize('write', topic);
    if (frame.recordCount === 0) throw new StreamError('INVALID_FRAME', 'records must hold at least one record');
    if (frame.recordCount > this.limits.maxBatchRecords) {
      throw new StreamError(
        'MESSAGE_TOO_LARGE',
        `batch of ${frame.recordCount} records exceeds the limit of ${this.limits.maxBatchRecords} records`,
      );
    }
    if (frame.producer !== undefined && frame.partition === undefined) {
      throw new StreamError('INVALID_FRAME', 'producer (idempotence) needs an explicit partition');
    }
    if (frame.stored !== undefined) return this.appendStored(frame, topic, frame.stored);
    const records = frame.decode();
    const bytes = recordBytes(records);
    const admission = this.admit(records.length, bytes);
    try {
      return await this.appendAdmitted(frame, topic, records, bytes);
    } finally {
      admission.release();
    }
  }

  /** Quotas and server-wide bounds: RATE_LIMITED (and a `slow_down`) when they refuse. */
  private admit(records: number, bytes: number): { readonly release: () => void } {
    const admission = this.admitProduce(records, bytes);
    if ('retryAfterMs' in admission) {
      this.slowDown(admission.retryAfterMs);
      throw new StreamError('RATE_LIMITED', `produce refused by flow control; retry in ${Math.ceil(admission.retryAfterMs)} ms`);
    }
    return admission;
  }

  /**
   * Binary kind 0x05: the engine checks the client-built batch (malformed → INVALID_FRAME) and
   * appends it as it is. Only with an explicit partition, and only on engines that offer it
   * (welcome.features `stored_produce`).
   */
  private async appendStored(frame: ProduceRequest, topic: string, batch: Uint8Array): Promise<ServerFrame> {
    const { partition, producer } = frame;
    const engine = this.engine;
    if (!takesStoredBatches(engine)) {
      throw new StreamError('INVALID_FRAME', 'stored produce frames (kind 0x05) are not offered by this server (no stored_produce in welcome.features): send kind 0x01');
    }
    if (partition === undefined) throw new StreamError('INVALID_FRAME', 'a stored produce frame (kind 0x05) needs an explicit partition');
    let info: StoredBatchInfo;
    try {
      info = engine.checkStoredBatch(batch);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new StreamError('INVALID_FRAME', `invalid stored produce frame: ${err.message}`);
      throw err;
    }
    if (info.producerId !== (producer?.id ?? null)) {
      throw new StreamError('INVALID_FRAME', "invalid stored produce frame: the batch's producer id is not the one in the frame header");
    }
    const admission = this.admit(info.count, info.payloadBytes);
    try {
      const started = performance.now();
      const options = producer === undefined ? undefined : { producer };
      const result = await this.withAutoCreate(topic, () => engine.appendStored(topic, partition, batch, info, options));
      if (!result.duplicate) this.observer?.produced(topic, info.count, info.payloadBytes, (performance.now() - started) / 1000);
      return this.producedReply(frame, result);
    } finally {
      admission.release();
    }
  }

  private async appendAdmitted(frame: ProduceRequest, topic: string, records: ProduceRecord[], bytes: number): Promise<ServerFrame> {
    const { partition, producer } = frame;
    const started = performance.now();
    if (partition === undefined) {
      const positions = await this.withAutoCreate(topic, () => this.engine.produce(topic, records));
      this.observer?.produced(topic, records.length, bytes, (performance.now() - started) / 1000);
      return { type: 'produced', id: frame.id, offsets: positions, duplicate: false };
    }
    const result = await this.withAutoCreate(topic, () =>
      this.engine.append(topic, partition, records, producer === undefined ? undefined : { producer }),
    );
    if (!result.duplicate) this.observer?.produced(topic, records.length, bytes, (performance.now() - started) / 1000);
    return this.producedReply(frame, result);
  }

  private producedReply(frame: ProduceRequest, result: AppendResult): ServerFrame {
    return {
      type: 'produced',
      id: frame.id,
      offsets: { partition: result.partition, base: result.baseOffset, count: result.count },
      duplicate: result.duplicate,
      compact: frame.compactAck,
    };
  }

  private withAutoCreate<T>(topic: string, op: () => Promise<T>): Promise<T> {
    return this.autoCreate ? this.autoCreate.run(topic, op) : op();
  }

  // ── subscriptions ───────────────────────────────────────────────────────────────────────

  /** `stored_batches` needs binary frames. */
  private assertStoredBatches(stored: boolean | undefined): void {
    if (stored === true && this.encoding !== 'binary') {
      throw new StreamError('INVALID_FRAME', 'stored_batches needs the brook.v1.bin subprotocol (stored batches travel as binary frames)');
    }
  }

  private async subscribe(frame: SubscribeFrame): Promise<Answer> {
    this.assertStoredBatches(frame.stored_batches);
    this.assertCanSubscribe(frame.sub);
    assertValidTopicName(frame.topic);
    this.authorize('read', frame.topic);
    const position = await resolveFrom(this.engine, frame.topic, frame.partition, frame.from ?? 'earliest');
    // Checked again: another subscribe may have taken the name or the last slot meanwhile.
    this.assertCanSubscribe(frame.sub);
    const sub = this.openSubscription(frame.sub, frame.topic, frame.partition, position.offset, frame.credits ?? { records: 0 }, frame.stored_batches === true);
    this.ownSubs++;
    return {
      frame: { type: 'subscribed', id: frame.id, sub: frame.sub, offset: position.offset, high_watermark: position.highWatermark },
      started: [sub],
    };
  }

  private assertCanSubscribe(name: string): void {
    if (name.startsWith(GROUP_SUB_PREFIX)) {
      throw new StreamError('INVALID_FRAME', `subscription names starting with "${GROUP_SUB_PREFIX}" are reserved for consumer groups`);
    }
    if (this.subs.has(name)) throw new StreamError('SUBSCRIPTION_EXISTS', `subscription "${name}" already exists on this connection`);
    if (this.ownSubs >= this.limits.maxSubscriptions) {
      throw new StreamError('INVALID_ARGUMENT', `at most ${this.limits.maxSubscriptions} subscriptions per connection`);
    }
  }

  private unsubscribe(id: RequestId, name: string): Answer {
    const sub = this.subs.get(name);
    if (!sub) throw notFound(name);
    if (name.startsWith(GROUP_SUB_PREFIX)) {
      throw new StreamError('INVALID_FRAME', 'a consumer group partition stops with leave, not unsubscribe');
    }
    this.closeSubscription(sub);
    this.ownSubs--;
    return { frame: { type: 'unsubscribed', id, sub: name }, started: [] };
  }

  private async seek(frame: SeekFrame): Promise<Answer> {
    const sub = this.subs.get(frame.sub);
    if (!sub) throw notFound(frame.sub);
    const position = await resolveFrom(this.engine, sub.topic, sub.partition, frame.from);
    if (sub.closed) throw notFound(frame.sub);
    sub.seek(position.offset);
    return {
      frame: { type: 'subscribed', id: frame.id, sub: frame.sub, offset: position.offset, high_watermark: position.highWatermark },
      started: [sub],
    };
  }

  // ── fetch ───────────────────────────────────────────────────────────────────────────────

  private async fetch(frame: FetchFrame): Promise<Answer> {
    const { topic, partition } = frame;
    assertValidTopicName(topic);
    this.authorize('read', topic);
    const limits: ReadLimits = {
      ...(frame.max === undefined ? {} : { maxRecords: Math.min(frame.max, this.limits.maxFetchRecords) }),
      ...(frame.max_bytes === undefined ? {} : { maxBytes: Math.min(frame.max_bytes, this.limits.maxFetchBytes) }),
    };
    const waitMs = Math.min(frame.wait_ms ?? 0, this.limits.maxWaitMs);
    // The frame is built while the read's share of the server's read budget is held.
    const answer = (result: ReadResult): { empty: boolean; nextOffset: number; frame: OutboundFrame } => {
      this.observer?.delivered(topic, result.records, result.records.length);
      return { empty: result.records.length === 0, nextOffset: result.nextOffset, frame: this.frames.fetched(frame.id, result) };
    };
    let fetched = await budgetedRead(this.engine, this.readBudget, { topic, partition, offset: frame.offset, limits }, answer);
    if (fetched.empty && waitMs > 0) {
      const signal = this.abort.signal;
      const ready = await this.engine.waitForData(topic, partition, fetched.nextOffset, { timeoutMs: waitMs, signal });
      if (ready && !signal.aborted) {
        fetched = await budgetedRead(this.engine, this.readBudget, { topic, partition, offset: fetched.nextOffset, limits }, answer);
      }
    }
    return { frame: fetched.frame, started: [] };
  }

  // ── consumer groups ─────────────────────────────────────────────────────────────────────

  private join(frame: JoinFrame): Promise<Answer> {
    try {
      this.assertStoredBatches(frame.stored_batches);
      for (const topic of frame.topics) {
        assertValidTopicName(topic);
        this.authorize('read', topic);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    let group = this.groups.get(frame.group);
    if (!group) {
      if (this.groups.size >= MAX_GROUPS_PER_SESSION) {
        return Promise.reject(new StreamError('INVALID_ARGUMENT', `at most ${MAX_GROUPS_PER_SESSION} groups per connection`));
      }
      group = new GroupMemberSession(frame.group, this);
      this.groups.set(frame.group, group);
    }
    const member = group;
    return member.run(() => member.join(frame.id, frame));
  }

  private async commit(frame: CommitFrame): Promise<Answer> {
    for (const o of frame.offsets) {
      assertValidTopicName(o.topic);
      this.authorize('read', o.topic);
    }
    const group = this.groups.get(frame.group);
    // Not a member here: a standalone consumer committing unfenced, as over HTTP.
    if (group) await group.run(() => group.commit(frame));
    else await this.engine.commitOffsets(frame.group, offsetCommits(frame));
    return { frame: { type: 'committed', id: frame.id }, started: [] };
  }
}

function allowEverything(): void {}

const ADMITTED: ProduceAdmission = { release: () => undefined };
/** Whether the engine takes client-built batches (stored produce, kind 0x05). */
function takesStoredBatches(engine: Engine): engine is Engine & Required<Pick<Engine, 'checkStoredBatch' | 'appendStored'>> {
  return engine.checkStoredBatch !== undefined && engine.appendStored !== undefined;
}

function admitEverything(): ProduceAdmission {
  return ADMITTED;
}

function notFound(sub: string): StreamError {
  return new StreamError('SUBSCRIPTION_NOT_FOUND', `no subscription "${sub}" on this connection`);
}

function notMember(group: string): StreamError {
  return new StreamError('UNKNOWN_MEMBER', `this connection is not a member of group "${group}"; join first`);
}
