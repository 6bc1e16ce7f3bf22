/**
 * Frames of the WebSocket protocol (docs/protocol.md) as the SDK sees them: JSON text, one frame
 * per message, a discriminated union keyed by `type`.
 *
 * Server frames are checked by hand rather than with a schema library: the SDK runs in browsers
 * where every kilobyte counts, and only the fields the SDK reads are checked (a newer server may
 * add fields; an unknown `type` is ignored for the same reason).
 */
import { ProtocolError } from './errors.js';
import { utf8Length } from './utf8.js';

/** Where a subscription starts. */
export type StartPosition =
  | 'earliest'
  | 'latest'
  | { readonly offset: number }
  | { readonly timestamp: number }
  | { readonly group: string };

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface Credits {
  readonly records: number;
  readonly bytes: number;
}

/** A record in a `records` or `fetched` frame (JSON text or binary). */
export interface WireRecord {
  readonly offset: number;
  readonly key: string | null;
  /** The value as JSON; for a binary frame decoded on first access (JSON when it parses, else the string). */
  readonly value: unknown;
  /** The value's bytes: as stored for a binary frame, the UTF-8 of its JSON text for a JSON one (made on first access). */
  readonly valueBytes: Uint8Array | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: number;
}

/** The bounds from `welcome.limits`. */
export interface ServerLimits {
  readonly maxFrameBytes: number;
  /** Unacknowledged produce frames per connection. */
  readonly maxInflightProduce: number;
  /** Unanswered requests of other types per connection (absent from older servers: unbounded). */
  readonly maxInflightRequests: number;
  /** Subscriptions per connection, group partitions not counted (absent: unbounded). */
  readonly maxSubscriptions: number;
  readonly maxRecordBytes: number;
  readonly maxBatchRecords: number;
  readonly heartbeatMs: number;
  /** Batches the server remembers per idempotent producer (absent from older servers: 5). */
  readonly producerBatches: number;
  /** The server answers `compact_ack` (listed in `welcome.features`; older servers refuse the field). */
  readonly compactAck: boolean;
  /** The server pushes stored batches on request (`stored_batches`; listed on binary connections only). */
  readonly storedBatches: boolean;
  /** The server takes produce frames whose records are one batch in its stored layout (binary kind 0x05). */
  readonly storedProduce: boolean;
}

/** Requests the SDK sends, without their `id` (the connection assigns it). */
export type ClientRequest =
  | {
      readonly type: 'subscribe';
      readonly sub: string;
      readonly topic: string;
      readonly partition: number;
      readonly from: StartPosition;
      readonly credits: Credits;
      readonly stored_batches?: boolean;
    }
  | { readonly type: 'unsubscribe'; readonly sub: string }
  | { readonly type: 'seek'; readonly sub: string; readonly from: StartPosition }
  | {
      readonly type: 'join';
      readonly group: string;
      readonly topics: readonly string[];
      readonly strategy?: string;
      readonly session_timeout_ms?: number;
      readonly credits: Credits;
      readonly stored_batches?: boolean;
    }
  | { readonly type: 'heartbeat'; readonly group: string }
  | { readonly type: 'commit'; readonly group: string; readonly offsets: readonly (TopicPartition & { readonly offset: number })[] }
  | { readonly type: 'leave'; readonly group: string }
  | { readonly type: 'enqueue'; readonly queue: string; readonly messages: readonly WireEnqueue[] }
  | { readonly type: 'work'; readonly sub: string; readonly queue: string; readonly credits: number; readonly visibility_ms?: number }
  | { readonly type: 'stop_work'; readonly sub: string }
  | {
      readonly type: 'ack' | 'nack' | 'extend' | 'reject';
      readonly queue: string;
      readonly receipts: readonly string[];
      readonly delay_ms?: number;
      readonly visibility_ms?: number;
      readonly error?: string;
    };

/** A message of an `enqueue` frame. */
export interface WireEnqueue {
  readonly value: unknown;
  readonly delay_ms?: number;
  readonly deadline?: number;
  readonly priority?: number;
  readonly dedup_id?: string;
  readonly key?: string;
  readonly ttl_ms?: number;
}

/** A delivery in a `jobs` push. */
export interface WireJob {
  readonly id: string;
  readonly receipt: string;
  readonly deliveries: number;
  readonly value: unknown;
  readonly key: string | null;
  readonly enqueuedAt: number;
  readonly deadline: number | null;
  readonly priority: number;
}

export interface JobsFrame {
  readonly type: 'jobs';
  readonly sub: string;
  readonly queue: string;
  readonly jobs: readonly WireJob[];
}

/** Frames sent without expecting a reply. */
export interface CreditFrame {
  readonly type: 'credit';
  readonly sub: string;
  readonly records: number;
  readonly bytes: number;
}

/** Consecutive offsets in one partition: a `produced` reply to a produce with `compact_ack`. */
export interface OffsetRun {
  readonly partition: number;
  readonly base: number;
  readonly count: number;
}

export type Reply =
  | {
      readonly type: 'produced';
      readonly offsets: readonly { readonly partition: number; readonly offset: number }[] | OffsetRun;
      readonly duplicate: boolean;
    }
  | { readonly type: 'subscribed'; readonly sub: string; readonly offset: number; readonly highWatermark: number }
  | { readonly type: 'unsubscribed'; readonly sub: string }
  | { readonly type: 'joined'; readonly memberId: string; readonly generation: number; readonly assignment: readonly TopicPartition[]; readonly heartbeatIntervalMs: number }
  | AssignmentFrame
  | { readonly type: 'committed' }
  | { readonly type: 'left' }
  | { readonly type: 'enqueued'; readonly ids: readonly string[] }
  | { readonly type: 'working'; readonly sub: string }
  | { readonly type: 'work_stopped'; readonly sub: string }
  | { readonly type: 'settled' };

export interface AssignmentFrame {
  readonly type: 'assignment';
  /** The group (absent from servers that follow docs/protocol.md to the letter). */
  readonly group: string | undefined;
  readonly generation: number;
  readonly assignment: readonly TopicPartition[];
  readonly revoked: readonly TopicPartition[];
}

export interface RecordsFrame {
  readonly type: 'records';
  readonly sub: string;
  readonly partition: number;
  readonly records: readonly WireRecord[];
  readonly nextOffset: number;
  /**
   * UTF-8 bytes of the records' JSON as sent, which is what the server counts against byte
   * credit; undefined when the frame is not laid out as expected (see {@link recordsBytes}).
   */
  readonly recordsBytes: number | undefined;
  /** Binary frames: each record's size exactly as the server counted it against byte credit. */
  readonly sizes?: readonly number[];
}

/** Server frames, decoded: a reply to a request (`id` set), an error, or a push. */
export type ServerFrame =
  | { readonly type: 'welcome'; readonly session: string; readonly limits: ServerLimits }
  | { readonly type: 'reply'; readonly id: number | string; readonly reply: Reply }
  | {
      readonly type: 'error';
      /** The request it answers. */
      readonly id: number | string | undefined;
      /** The subscription whose push failed (it stays stopped until a seek). */
      readonly sub: string | undefined;
      /** The group whose membership ended (session expired). */
      readonly group: string | undefined;
      readonly code: string;
      readonly message: string;
    }
  | RecordsFrame
  | AssignmentFrame
  | JobsFrame
  | { readonly type: 'slow_down'; readonly retryAfterMs: number }
  | { readonly type: 'unknown'; readonly name: string };

type Obj = Readonly<Record<string, unknown>>;

function bad(what: string): never {
  throw new ProtocolError(`malformed frame from the server: ${what}`);
}

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what} is not an object`);
  return v as Obj;
}

function int(o: Obj, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`${field} is not a non-negative integer`);
  return v;
}

function str(o: Obj, field: string): string {
  const v = o[field];
  if (typeof v !== 'string') bad(`${field} is not a string`);
  return v;
}

function arr(o: Obj, field: string): readonly unknown[] {
  const v = o[field];
  if (!Array.isArray(v)) bad(`${field} is not an array`);
  return v;
}

function topicPartitions(o: Obj, field: string): TopicPartition[] {
  return arr(o, field).map((e) => {
    const tp = obj(e, field);
    return { topic: str(tp, 'topic'), partition: int(tp, 'partition') };
  });
}

const utf8Encoder = new TextEncoder();

/** A record of a JSON frame; its `valueBytes` are made only when asked for. */
class JsonWireRecord implements WireRecord {
  private bytes: Uint8Array | null | undefined;

  constructor(
    readonly offset: number,
    readonly key: string | null,
    readonly value: unknown,
    readonly headers: Readonly<Record<string, string>>,
    readonly timestamp: number,
  ) {}

  get valueBytes(): Uint8Array | null {
    if (this.bytes === undefined) this.bytes = this.value === null ? null : utf8Encoder.encode(JSON.stringify(this.value));
    return this.bytes;
  }
}

function wireRecord(v: unknown): WireRecord {
  const r = obj(v, 'record');
  const key = r['key'];
  if (key !== null && key !== undefined && typeof key !== 'string') bad('record key is not a string');
  const headers = r['headers'] === undefined ? {} : (obj(r['headers'], 'headers') as Readonly<Record<string, string>>);
  return new JsonWireRecord(int(r, 'offset'), key ?? null, r['value'] ?? null, headers, int(r, 'timestamp'));
}

function wireJob(v: unknown): WireJob {
  const j = obj(v, 'job');
  const key = j['key'];
  if (key !== null && key !== undefined && typeof key !== 'string') bad('job key is not a string');
  const deadline = j['deadline'];
  return {
    id: str(j, 'id'),
    receipt: str(j, 'receipt'),
    deliveries: int(j, 'deliveries'),
    value: j['value'] ?? null,
    key: key ?? null,
    enqueuedAt: int(j, 'enqueued_at'),
    deadline: typeof deadline === 'number' ? deadline : null,
    priority: int(j, 'priority'),
  };
}

/** `field`, or `absent` (unbounded by default) when an older server does not send it. */
function optionalInt(o: Obj, field: string, absent = Number.POSITIVE_INFINITY): number {
  return o[field] === undefined ? absent : int(o, field);
}

/** What servers remembered per idempotent producer before they said so in `welcome`. */
const OLD_SERVER_PRODUCER_BATCHES = 5;

function optionalStr(o: Obj, field: string): string | undefined {
  return o[field] === undefined ? undefined : str(o, field);
}

function limits(o: Obj, features: unknown): ServerLimits {
  return {
    compactAck: Array.isArray(features) && features.includes('compact_ack'),
    storedBatches: Array.isArray(features) && features.includes('stored_batches'),
    storedProduce: Array.isArray(features) && features.includes('stored_produce'),
    maxFrameBytes: int(o, 'max_frame_bytes'),
    maxInflightProduce: int(o, 'max_inflight_produce'),
    maxInflightRequests: optionalInt(o, 'max_inflight_requests'),
    maxSubscriptions: optionalInt(o, 'max_subscriptions'),
    maxRecordBytes: int(o, 'max_record_bytes'),
    maxBatchRecords: int(o, 'max_batch_records'),
    heartbeatMs: int(o, 'heartbeat_ms'),
    producerBatches: optionalInt(o, 'producer_batches', OLD_SERVER_PRODUCER_BATCHES),
  };
}

function assignment(o: Obj): AssignmentFrame {
  return {
    type: 'assignment',
    group: optionalStr(o, 'group'),
    generation: int(o, 'generation'),
    assignment: topicPartitions(o, 'assignment'),
    revoked: o['revoked'] === undefined ? [] : topicPartitions(o, 'revoked'),
  };
}

function offsetRun(o: Obj): OffsetRun {
  return { partition: int(o, 'partition'), base: int(o, 'base'), count: int(o, 'count') };
}

function reply(type: string, o: Obj): Reply | null {
  switch (type) {
    case 'produced':
      return {
        type,
        offsets: Array.isArray(o['offsets'])
          ? arr(o, 'offsets').map((e) => {
              const p = obj(e, 'offset');
              return { partition: int(p, 'partition'), offset: int(p, 'offset') };
            })
          : offsetRun(obj(o['offsets'], 'offsets')),
        duplicate: o['duplicate'] === true,
      };
    case 'subscribed':
      return { type, sub: str(o, 'sub'), offset: int(o, 'offset'), highWatermark: int(o, 'high_watermark') };
    case 'unsubscribed':
      return { type, sub: str(o, 'sub') };
    case 'joined':
      return {
        type,
        memberId: str(o, 'member_id'),
        generation: int(o, 'generation'),
        assignment: topicPartitions(o, 'assignment'),
        heartbeatIntervalMs: int(o, 'heartbeat_interval_ms'),
      };
    case 'assignment':
      return assignment(o);
    case 'committed':
    case 'left':
    case 'settled':
      return { type };
    case 'enqueued':
      return { type, ids: arr(o, 'ids').map((id) => (typeof id === 'string' ? id : bad('ids holds a non-string'))) };
    case 'working':
    case 'work_stopped':
      return { type, sub: str(o, 'sub') };
    default:
      return null;
  }
}

function requestId(o: Obj): number | string | undefined {
  const id = o['id'];
  if (id === undefined || id === null) return undefined;
  if (typeof id !== 'number' && typeof id !== 'string') bad('id is neither a number nor a string');
  return id;
}

/** Decodes one text frame; throws ProtocolError when it is not a frame the SDK can use. */
export function parseServerFrame(text: string): ServerFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError('the server sent a frame that is not JSON', { cause: err });
  }
  const o = obj(parsed, 'frame');
  const type = str(o, 'type');
  const id = requestId(o);
  switch (type) {
    case 'welcome':
      return { type, session: str(o, 'session'), limits: limits(obj(o['limits'], 'limits'), o['features']) };
    case 'error':
      return {
        type,
        id,
        sub: optionalStr(o, 'sub'),
        group: optionalStr(o, 'group'),
        code: str(o, 'code'),
        message: typeof o['message'] === 'string' ? o['message'] : '',
      };
    case 'records': {
      const sub = str(o, 'sub');
      const partition = int(o, 'partition');
      const records = arr(o, 'records').map(wireRecord);
      const nextOffset = int(o, 'next_offset');
      return { type, sub, partition, records, nextOffset, recordsBytes: recordsBytes(text, sub, partition, records.length, nextOffset) };
    }
    case 'slow_down':
      return { type, retryAfterMs: int(o, 'retry_after_ms') };
    case 'jobs':
      return { type, sub: str(o, 'sub'), queue: str(o, 'queue'), jobs: arr(o, 'messages').map(wireJob) };
    default: {
      if (type === 'assignment' && id === undefined) return assignment(o);
      const r = reply(type, o);
      if (r === null) return { type: 'unknown', name: type };
      if (id === undefined) bad(`${type} without an id`);
      return { type: 'reply', id, reply: r };
    }
  }
}

/**
 * The bytes of a `records` frame's records: the frame's size minus its envelope and the commas
 * between records. The server writes the frame as
 * `{"type":"records","sub":…,"partition":…,"records":[r1,r2,…],"next_offset":…}` with each record
 * spliced in as stored, so this is exact even for records whose JSON a parse and re-stringify
 * would not reproduce (values written by other sources with other spacing or escapes). Undefined
 * when the frame is laid out otherwise.
 */
function recordsBytes(text: string, sub: string, partition: number, count: number, nextOffset: number): number | undefined {
  const envelope = `{"type":"records","sub":${JSON.stringify(sub)},"partition":${partition},"records":[],"next_offset":${nextOffset}}`;
  if (!text.startsWith(envelope.slice(0, envelope.indexOf('[') + 1))) return undefined;
  const bytes = utf8Length(text) - utf8Length(envelope) - Math.max(0, count - 1);
  // Every record is at least `{}`.
  return bytes >= 2 * count ? bytes : undefined;
}

/** A request frame as JSON text. */
export function encodeRequest(id: number, request: ClientRequest): string {
  return JSON.stringify({ ...request, id });
}
