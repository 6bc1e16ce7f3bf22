/**
 * The frames of the streaming protocol (docs/protocol.md): JSON text, one frame per message,
 * keyed by `type`. Inbound frames are untrusted and parsed with zod here, at the edge; outbound
 * frames are typed and encoded once, to one string each.
 *
 * Keys are snake_case on the wire, so the outbound types below use the wire names.
 */
import { z } from 'zod';
import type { TopicPartition } from '../engine/index.js';
import { MAX_COMMITS_PER_FRAME, MAX_HEADER_NAME_LENGTH, MAX_NAME_LENGTH } from './defaults.js';
import type { FrameErrorCode } from './errors.js';

// ── inbound ─────────────────────────────────────────────────────────────────────────────────

export const requestId = z.union([z.string().max(MAX_NAME_LENGTH), z.int()]);
const count = z.int().nonnegative();
const name = z.string().min(1).max(MAX_NAME_LENGTH);

const from = z.union([
  z.literal('earliest'),
  z.literal('latest'),
  z.strictObject({ offset: count }),
  z.strictObject({ timestamp: count }),
  z.strictObject({ group: z.string().min(1) }),
]);

/** `bytes` absent: byte credit is not counted, only records. */
const credits = z.strictObject({ records: count, bytes: count.optional() });

const produce = z.strictObject({
  type: z.literal('produce'),
  id: requestId,
  topic: z.string(),
  partition: count.optional(),
  producer: z.strictObject({ id: z.string().min(1), sequence: count }).optional(),
  compact_ack: z.boolean().optional(),
  // Checked after the in-flight bound and the batch size, so an excess frame costs no validation.
  records: z.array(z.unknown()),
});

/** The non-record fields of a binary produce: a JSON `produce` frame without `type` and `records`. */
export const produceHeader = produce.omit({ type: true, records: true });

/** One record of a produce frame, as in the HTTP API. */
export const recordSchema = z.strictObject({
  key: z.string().nullable().optional(),
  value: z.unknown(),
  headers: z.record(z.string().max(MAX_HEADER_NAME_LENGTH), z.string()).optional(),
});
export const recordsSchema = z.array(recordSchema);

const subscribe = z.strictObject({
  type: z.literal('subscribe'),
  id: requestId,
  sub: name,
  topic: z.string(),
  partition: count,
  from: from.optional(),
  credits: credits.optional(),
  /** Push whole stored batches (binary kind 0x04) where the engine can: `brook.v1.bin` only. */
  stored_batches: z.boolean().optional(),
});

const credit = z.strictObject({
  type: z.literal('credit'),
  sub: name,
  records: count.optional(),
  bytes: count.optional(),
});

const unsubscribe = z.strictObject({ type: z.literal('unsubscribe'), id: requestId, sub: name });

const seek = z.strictObject({ type: z.literal('seek'), id: requestId, sub: name, from });

const fetch = z.strictObject({
  type: z.literal('fetch'),
  id: requestId,
  topic: z.string(),
  partition: count,
  offset: count,
  max: z.int().positive().optional(),
  max_bytes: z.int().positive().optional(),
  wait_ms: count.optional(),
});

const join = z.strictObject({
  type: z.literal('join'),
  id: requestId,
  group: z.string().min(1),
  topics: z.array(z.string()).min(1),
  strategy: z.enum(['range', 'round-robin', 'sticky']).optional(),
  session_timeout_ms: z.int().positive().optional(),
  client_id: z.string().optional(),
  credits: credits.optional(),
  stored_batches: z.boolean().optional(),
});

const heartbeat = z.strictObject({ type: z.literal('heartbeat'), id: requestId, group: z.string().min(1) });

const commit = z.strictObject({
  type: z.literal('commit'),
  id: requestId,
  group: z.string().min(1),
  offsets: z
    .array(z.strictObject({ topic: z.string(), partition: count, offset: count, metadata: z.string().optional() }))
    .max(MAX_COMMITS_PER_FRAME),
});

const leave = z.strictObject({ type: z.literal('leave'), id: requestId, group: z.string().min(1) });

// Work queues (docs/protocol.md, "Queues"); the shapes follow the HTTP API.
const queueName = z.string().min(1).max(MAX_NAME_LENGTH);
const queueMessage = z.strictObject({
  value: z.unknown(),
  delay_ms: count.optional(),
  deadline: z.int().positive().optional(),
  priority: z.int().min(0).max(9).optional(),
  dedup_id: z.string().min(1).max(128).optional(),
  key: z.string().min(1).max(256).optional(),
  ttl_ms: z.int().positive().optional(),
});
const receipts = z.array(z.string().max(64)).min(1).max(1000);

const enqueue = z.strictObject({ type: z.literal('enqueue'), id: requestId, queue: queueName, messages: z.array(queueMessage).min(1) });
const receive = z.strictObject({
  type: z.literal('receive'),
  id: requestId,
  queue: queueName,
  max: z.int().min(1).max(1000).optional(),
  visibility_ms: z.int().positive().optional(),
  wait_ms: count.optional(),
});
/** Pushed deliveries: up to `credits` messages at once; each `credit` frame for `sub` allows more. */
const work = z.strictObject({
  type: z.literal('work'),
  id: requestId,
  sub: name,
  queue: queueName,
  credits: z.int().min(0).max(1000),
  visibility_ms: z.int().positive().optional(),
});
const stopWork = z.strictObject({ type: z.literal('stop_work'), id: requestId, sub: name });
const ack = z.strictObject({ type: z.literal('ack'), id: requestId, queue: queueName, receipts });
const nack = z.strictObject({
  type: z.literal('nack'),
  id: requestId,
  queue: queueName,
  receipts,
  delay_ms: count.optional(),
  error: z.string().max(2048).optional(),
});
const extend = z.strictObject({ type: z.literal('extend'), id: requestId, queue: queueName, receipts, visibility_ms: z.int().positive().optional() });
const reject = z.strictObject({ type: z.literal('reject'), id: requestId, queue: queueName, receipts, error: z.string().max(2048).optional() });

const clientFrame = z.discriminatedUnion('type', [
  enqueue,
  receive,
  work,
  stopWork,
  ack,
  nack,
  extend,
  reject,
  produce,
  subscribe,
  credit,
  unsubscribe,
  seek,
  fetch,
  join,
  heartbeat,
  commit,
  leave,
]);

export type ClientFrame = z.infer<typeof clientFrame>;
export type ClientFrameType = ClientFrame['type'];
export type ProduceFrame = z.infer<typeof produce>;
export type SubscribeFrame = z.infer<typeof subscribe>;
export type CreditFrame = z.infer<typeof credit>;
export type SeekFrame = z.infer<typeof seek>;
export type FetchFrame = z.infer<typeof fetch>;
export type JoinFrame = z.infer<typeof join>;
export type CommitFrame = z.infer<typeof commit>;
export type From = z.infer<typeof from>;
export type EnqueueFrame = z.infer<typeof enqueue>;
export type ReceiveFrame = z.infer<typeof receive>;
export type WorkFrame = z.infer<typeof work>;
export type QueueMessageFrame = z.infer<typeof queueMessage>;
export type SettleFrame = z.infer<typeof ack> | z.infer<typeof nack> | z.infer<typeof extend> | z.infer<typeof reject>;
/** The frame types a queue session handles. */
export const QUEUE_FRAME_TYPES = ['enqueue', 'receive', 'work', 'stop_work', 'ack', 'nack', 'extend', 'reject'] as const;
export type Credits = z.infer<typeof credits>;
export type RequestId = z.infer<typeof requestId>;

const CLIENT_FRAME_TYPES: ReadonlySet<string> = new Set<ClientFrameType>([
  'produce',
  'subscribe',
  'credit',
  'unsubscribe',
  'seek',
  'fetch',
  'join',
  'heartbeat',
  'commit',
  'leave',
  ...QUEUE_FRAME_TYPES,
]);

export type ParsedFrame =
  | { readonly ok: true; readonly frame: ClientFrame }
  | { readonly ok: false; readonly id: RequestId | undefined; readonly message: string };

/** Parses one text frame. Never throws: a bad frame is described, with its `id` when it has a usable one. */
export function parseClientFrame(text: string): ParsedFrame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, id: undefined, message: `frame is not valid JSON: ${(err as Error).message.slice(0, 200)}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, id: undefined, message: 'a frame must be a JSON object' };
  }
  const object = raw as Record<string, unknown>;
  // Frames without an id (credit, at thousands a second) skip the union: zod builds and words
  // an issue for each branch that fails, which made up most of a credit frame's cost.
  const rawId = object['id'];
  const id = rawId === undefined ? undefined : requestId.safeParse(rawId);
  const usableId = id?.success === true ? id.data : undefined;
  const type = object['type'];
  if (typeof type !== 'string' || !CLIENT_FRAME_TYPES.has(type)) {
    const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 50)) : 'missing';
    return { ok: false, id: usableId, message: `unknown frame type (${shown})` };
  }
  const parsed = clientFrame.safeParse(raw);
  if (parsed.success) return { ok: true, frame: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, id: usableId, message: `invalid ${type} frame: ${where}${issue?.message ?? 'invalid'}`.slice(0, 300) };
}

// ── outbound ────────────────────────────────────────────────────────────────────────────────

/** Optional protocol features a server supports, listed in `welcome` (docs/protocol.md). */
export type ServerFeature = 'compact_ack' | 'stored_batches' | 'stored_produce';
/** Listed on every connection. */
export const SERVER_FEATURES: readonly ServerFeature[] = ['compact_ack'];
/** Listed on `brook.v1.bin` connections: the features that only binary frames can carry. */
export const BINARY_SERVER_FEATURES: readonly ServerFeature[] = ['compact_ack', 'stored_batches'];
/** Binary connections to an engine that takes client-built batches (Engine.appendStored) also list `stored_produce`. */
export const BINARY_STORED_PRODUCE_FEATURES: readonly ServerFeature[] = [...BINARY_SERVER_FEATURES, 'stored_produce'];

export interface SessionLimitsWire {
  readonly max_frame_bytes: number;
  readonly max_inflight_produce: number;
  readonly max_inflight_requests: number;
  readonly max_subscriptions: number;
  readonly max_record_bytes: number;
  readonly max_batch_records: number;
  readonly heartbeat_ms: number;
  /** Batches remembered per idempotent producer: the most one may have unacknowledged. */
  readonly producer_batches: number;
}

interface PartitionOffset {
  readonly partition: number;
  readonly offset: number;
}

export type ServerFrame =
  | { readonly type: 'welcome'; readonly session: string; readonly limits: SessionLimitsWire; readonly features: readonly ServerFeature[] }
  | {
      readonly type: 'produced';
      readonly id: RequestId;
      /** Either explicit positions (routed by key) or a run of consecutive offsets in one partition. */
      readonly offsets: readonly PartitionOffset[] | { readonly partition: number; readonly base: number; readonly count: number };
      readonly duplicate: boolean;
      /** The producer asked for `compact_ack`: a run is sent as one object, not one entry per record. */
      readonly compact?: boolean;
    }
  | { readonly type: 'subscribed'; readonly id: RequestId; readonly sub: string; readonly offset: number; readonly high_watermark: number }
  | {
      readonly type: 'records';
      readonly sub: string;
      readonly partition: number;
      /** The records as one JSON array, already encoded (each record is encoded exactly once). */
      readonly records: string;
      readonly next_offset: number;
    }
  | { readonly type: 'unsubscribed'; readonly id: RequestId; readonly sub: string }
  | {
      readonly type: 'fetched';
      readonly id: RequestId;
      readonly records: string;
      readonly next_offset: number;
      readonly high_watermark: number;
      readonly low_watermark: number;
    }
  | {
      readonly type: 'joined';
      readonly id: RequestId;
      readonly group: string;
      readonly member_id: string;
      readonly generation: number;
      readonly assignment: readonly TopicPartition[];
      readonly heartbeat_interval_ms: number;
      readonly session_timeout_ms: number;
    }
  | {
      readonly type: 'assignment';
      readonly id: RequestId;
      readonly group: string;
      readonly generation: number;
      readonly assignment: readonly TopicPartition[];
      readonly revoked: readonly TopicPartition[];
    }
  | { readonly type: 'committed'; readonly id: RequestId }
  | { readonly type: 'left'; readonly id: RequestId }
  | {
      readonly type: 'error';
      readonly id?: RequestId;
      /** Set when the error concerns a subscription rather than a request (a push that failed). */
      readonly sub?: string;
      /** Set when the error concerns a group membership (it expired). */
      readonly group?: string;
      readonly code: FrameErrorCode;
      readonly message: string;
    }
  | { readonly type: 'slow_down'; readonly retry_after_ms: number }
  | { readonly type: 'enqueued'; readonly id: RequestId; readonly ids: readonly string[] }
  /** `messages`: the deliveries as one JSON array, already encoded (values spliced in as stored). */
  | { readonly type: 'received'; readonly id: RequestId; readonly messages: string }
  | { readonly type: 'working'; readonly id: RequestId; readonly sub: string }
  | { readonly type: 'jobs'; readonly sub: string; readonly queue: string; readonly messages: string }
  | { readonly type: 'work_stopped'; readonly id: RequestId; readonly sub: string }
  | { readonly type: 'settled'; readonly id: RequestId };

export type ServerFrameType = ServerFrame['type'];

/** One frame, one string. Record-carrying frames splice their pre-encoded records in. */
export function encodeFrame(frame: ServerFrame): string {
  switch (frame.type) {
    case 'records':
      return `{"type":"records","sub":${JSON.stringify(frame.sub)},"partition":${frame.partition},"records":${frame.records},"next_offset":${frame.next_offset}}`;
    case 'fetched':
      return `{"type":"fetched","id":${JSON.stringify(frame.id)},"records":${frame.records},"next_offset":${frame.next_offset},"high_watermark":${frame.high_watermark},"low_watermark":${frame.low_watermark}}`;
    case 'received':
      return `{"type":"received","id":${JSON.stringify(frame.id)},"messages":${frame.messages}}`;
    case 'jobs':
      return `{"type":"jobs","sub":${JSON.stringify(frame.sub)},"queue":${JSON.stringify(frame.queue)},"messages":${frame.messages}}`;
    case 'produced':
      return `{"type":"produced","id":${JSON.stringify(frame.id)},"offsets":${offsetsJson(frame.offsets, frame.compact === true)},"duplicate":${frame.duplicate}}`;
    case 'welcome':
    case 'subscribed':
    case 'unsubscribed':
    case 'joined':
    case 'assignment':
    case 'committed':
    case 'left':
    case 'error':
    case 'slow_down':
    case 'enqueued':
    case 'working':
    case 'work_stopped':
    case 'settled':
      return JSON.stringify(frame);
    default:
      return unreachable(frame);
  }
}

function offsetsJson(offsets: Extract<ServerFrame, { type: 'produced' }>['offsets'], compact: boolean): string {
  if (compact && 'base' in offsets) return `{"partition":${offsets.partition},"base":${offsets.base},"count":${offsets.count}}`;
  let out = '[';
  if ('base' in offsets) {
    for (let i = 0; i < offsets.count; i++) {
      out += `${i === 0 ? '' : ','}{"partition":${offsets.partition},"offset":${offsets.base + i}}`;
    }
  } else {
    for (let i = 0; i < offsets.length; i++) {
      const p = offsets[i]!;
      out += `${i === 0 ? '' : ','}{"partition":${p.partition},"offset":${p.offset}}`;
    }
  }
  return out + ']';
}

export function unreachable(value: never): never {
  throw new Error(`unreachable: ${JSON.stringify(value)}`);
}
