import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type NatsError, type Subscription } from 'nats';
import { JsErr } from './nats-errors.js';

export interface PublishItem {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Undefined: a plain PUB without a header block (cheaper to encode and to store). */
  readonly headers: MsgHdrs | undefined;
}

export type PublishFailureKind = 'no-stream' | 'too-large' | 'wrong-last-sequence' | 'rejected' | 'timeout' | 'closed';

export type PublishOutcome =
  | { readonly ok: true; readonly seq: number; readonly duplicate: boolean }
  | { readonly ok: false; readonly kind: PublishFailureKind; readonly message: string; readonly cause?: unknown };

interface Batch {
  readonly items: readonly PublishItem[];
  readonly outcomes: PublishOutcome[];
  next: number;
  remaining: number;
  readonly resolve: (outcomes: PublishOutcome[]) => void;
}

interface InFlight {
  readonly batch: Batch;
  readonly index: number;
  readonly deadline: number;
}

export interface AckPipelineOptions {
  /** Publishes awaiting their PubAck, across all partitions; more wait in FIFO order. */
  readonly maxInFlight: number;
  /** A publish without an answer after this long is reported as `timeout` (outcome unknown). */
  readonly ackTimeoutMs: number;
}

/**
 * Pipelined JetStream publishing: every message is a plain NATS publish whose reply subject is
 * one token under a single wildcard subscription, so a PubAck costs one map lookup instead of a
 * request with its own timer (nats.js `js.publish`, five to ten times slower here). Messages
 * leave in call order on one connection, which JetStream stores in that order, so the records of
 * a batch, and batches appended one after another, get consecutive sequences as long as this
 * connection is the only writer of the stream.
 *
 * Why a reply subject per message and not per batch (what the raw-JetStream benchmark does, and
 * cheaper): matching a batch's answers to its messages by their order breaks when a message gets
 * no answer at all — sent to a stream leader that dies — while later ones are answered: the later
 * answers would be taken for earlier messages, and a lost record reported stored.
 *
 * Bounded: at most `maxInFlight` messages await an acknowledgement; batches behind them wait in
 * a FIFO whose length is bounded by the callers' concurrency.
 */
export class AckPipeline {
  private readonly inbox = createInbox();
  private readonly inFlight = new Map<number, InFlight>();
  private readonly queue: Batch[] = [];
  private readonly idleWaiters: Array<() => void> = [];
  private sub: Subscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 0;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: AckPipelineOptions,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.onAck(err, msg) });
    this.timer = setInterval(() => this.expire(), Math.max(50, Math.min(1000, this.options.ackTimeoutMs / 4)));
    this.timer.unref();
  }

  /** Publishes in order; resolves once every item has an outcome (never rejects). */
  publish(items: readonly PublishItem[]): Promise<PublishOutcome[]> {
    return new Promise((resolve) => {
      const batch: Batch = { items, outcomes: new Array<PublishOutcome>(items.length), next: 0, remaining: items.length, resolve };
      if (items.length === 0) return resolve([]);
      if (this.closed) {
        for (let i = 0; i < items.length; i++) this.settle(batch, i, closedOutcome());
        return;
      }
      this.queue.push(batch);
      this.pump();
    });
  }

  /** Resolves when nothing is queued or awaiting an acknowledgement. */
  idle(): Promise<void> {
    if (this.inFlight.size === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Fails everything still queued or in flight with `closed` and stops. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.sub?.unsubscribe();
    for (const [id, entry] of this.inFlight) {
      this.inFlight.delete(id);
      this.settle(entry.batch, entry.index, closedOutcome());
    }
    for (const batch of this.queue.splice(0)) {
      for (let i = batch.next; i < batch.items.length; i++) this.settle(batch, i, closedOutcome());
    }
    this.notifyIdle();
  }

  private pump(): void {
    const now = Date.now();
    while (this.queue.length > 0 && this.inFlight.size < this.options.maxInFlight && !this.closed) {
      const batch = this.queue[0]!;
      const index = batch.next++;
      if (batch.next === batch.items.length) this.queue.shift();
      const item = batch.items[index]!;
      const id = ++this.nextId;
      this.inFlight.set(id, { batch, index, deadline: now + this.options.ackTimeoutMs });
      try {
        const reply = `${this.inbox}.${id}`;
        this.nc.publish(item.subject, item.data, item.headers === undefined ? { reply } : { reply, headers: item.headers });
      } catch (err) {
        // Refused locally (connection closed or draining, payload over the server's limit).
        this.inFlight.delete(id);
        const tooLarge = (err as NatsError).code === 'MAX_PAYLOAD_EXCEEDED';
        this.settle(batch, index, { ok: false, kind: tooLarge ? 'too-large' : 'closed', message: (err as Error).message, cause: err });
      }
    }
  }

  private onAck(err: NatsError | null, msg: Msg): void {
    if (err) return; // only raised when the subscription closes; close() settles what is left
    const id = Number(msg.subject.slice(this.inbox.length + 1));
    const entry = this.inFlight.get(id);
    // An answer after the timeout: the caller was already told the outcome is unknown.
    if (!entry) return;
    this.inFlight.delete(id);
    this.settle(entry.batch, entry.index, parseAck(msg));
    this.pump();
  }

  private expire(): void {
    const now = Date.now();
    // Insertion order is send order and every publish has the same timeout: stop at the first live one.
    for (const [id, entry] of this.inFlight) {
      if (entry.deadline > now) break;
      this.inFlight.delete(id);
      this.settle(entry.batch, entry.index, {
        ok: false,
        kind: 'timeout',
        message: `no acknowledgement from JetStream within ${this.options.ackTimeoutMs} ms; the record may or may not have been stored`,
      });
    }
    this.pump();
  }

  private settle(batch: Batch, index: number, outcome: PublishOutcome): void {
    batch.outcomes[index] = outcome;
    if (--batch.remaining === 0) batch.resolve(batch.outcomes);
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.inFlight.size > 0 || this.queue.length > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

interface PubAckJson {
  readonly seq?: number;
  readonly duplicate?: boolean;
  readonly error?: { readonly code?: number; readonly err_code?: number; readonly description?: string };
}

function parseAck(msg: Msg): PublishOutcome {
  if (msg.headers?.code === 503 && msg.data.length === 0) {
    return { ok: false, kind: 'no-stream', message: 'no responders: no stream captures this subject, or its leader is being elected' };
  }
  const bytes = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  const fast = fastPubAck(bytes);
  if (fast !== null) return fast;
  let ack: PubAckJson;
  try {
    ack = JSON.parse(bytes.toString('utf8')) as PubAckJson;
  } catch (err) {
    return { ok: false, kind: 'rejected', message: 'JetStream answered with something that is not a PubAck', cause: err };
  }
  if (ack.error) {
    const code = ack.error.err_code;
    const kind: PublishFailureKind =
      code === JsErr.StreamMsgTooLarge ? 'too-large' : code === JsErr.WrongLastSequence ? 'wrong-last-sequence' : 'rejected';
    return { ok: false, kind, message: ack.error.description ?? 'JetStream refused the message', cause: ack.error };
  }
  if (typeof ack.seq !== 'number') return { ok: false, kind: 'rejected', message: 'PubAck without a sequence' };
  return { ok: true, seq: ack.seq, duplicate: ack.duplicate === true };
}

/**
 * The common PubAck, `{"stream":"…", "seq":N}` (maybe with `"domain"`), read from its bytes
 * without decoding them or calling JSON.parse: one ack per record made parsing a visible share
 * of the append path. Anything else — an error, or a shape this does not recognise — returns
 * null for the full parse.
 */
export function fastPubAck(ack: Buffer | string): PublishOutcome | null {
  const b = typeof ack === 'string' ? Buffer.from(ack, 'utf8') : ack;
  if (b[0] !== 123 /* { */) return null;
  // One pass over the bytes (a PubAck is about 40): native Buffer searches cost more per call
  // than the whole scan. A backslash means an escaped string, which could hide a `"seq":` inside
  // a name; errors and duplicates (rare; the server writes `"duplicate": true` with a space)
  // take the full parse.
  let at = -1;
  for (let i = 1; i < b.length; i++) {
    const c = b[i]!;
    if (c === 92 /* \ */) return null;
    if (c !== 34 /* " */) continue;
    if (at === -1 && matches(b, i + 1, SEQ_KEY)) at = i + SEQ_KEY.length + 1;
    else if (matches(b, i + 1, ERROR_KEY) || matches(b, i + 1, DUPLICATE_KEY)) return null;
  }
  if (at === -1) return null;
  let seq = 0;
  let i = at;
  for (; i < b.length; i++) {
    const c = b[i]!;
    if (c < 48 || c > 57) break;
    seq = seq * 10 + (c - 48);
  }
  const end = b[i];
  // A number that ends the field; anything unusual (spaces, exponents, huge values) takes the slow path.
  if (i === at || (end !== 44 /* , */ && end !== 125) /* } */ || !Number.isSafeInteger(seq)) return null;
  return { ok: true, seq, duplicate: false };
}

const SEQ_KEY = Buffer.from('seq":');
const ERROR_KEY = Buffer.from('error"');
const DUPLICATE_KEY = Buffer.from('duplicate"');

function matches(b: Buffer, at: number, pattern: Buffer): boolean {
  if (at + pattern.length > b.length) return false;
  for (let k = 0; k < pattern.length; k++) if (b[at + k] !== pattern[k]) return false;
  return true;
}

function closedOutcome(): PublishOutcome {
  return { ok: false, kind: 'closed', message: 'the engine is closed' };
}
