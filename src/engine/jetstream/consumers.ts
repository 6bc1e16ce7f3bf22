import {
  AckPolicy,
  createInbox,
  DeliverPolicy,
  nanos,
  type ConsumerConfig,
  type JetStreamManager,
  type Msg,
  type NatsConnection,
} from 'nats';
import type { Logger } from 'pino';
import { StorageError } from '../errors.js';
import { parseDelivery } from './record-codec.js';

/**
 * Reading with JetStream consumers. Every read goes through an ephemeral pull consumer with
 * `ack_policy: none` (nothing to acknowledge, the server just advances it) kept in memory:
 * a reader that continues where it stopped reuses the consumer already positioned there, so a
 * sequential read costs one pull request. Idle consumers are bounded in number and age, and
 * the server removes any we lose track of after `inactive_threshold`.
 */

export const PullStatus = {
  /** No messages (no_wait). */
  NoMessages: 404,
  /** The request expired, or no_wait ran out of messages after delivering some. */
  Timeout: 408,
  /** The next message is larger than `max_bytes`, or the consumer was deleted. */
  Conflict: 409,
  /** Nobody answered: the consumer (or the stream) does not exist. */
  NoResponders: 503,
} as const;

export interface PullRequest {
  readonly batch: number;
  readonly maxBytes?: number;
  /** Answer at once with what is there (404/408 when it runs out). */
  readonly noWait?: boolean;
  /** Server-side wait for messages (ignored with noWait). */
  readonly expiresMs?: number;
  /** Client-side bound on the whole pull. */
  readonly timeoutMs: number;
}

export interface PullResult {
  readonly messages: Msg[];
  /** The terminal status, or null when the batch was filled. */
  readonly status: number | null;
  readonly description: string;
}

/** One pull request to a consumer, collected on a private inbox. */
export function pull(nc: NatsConnection, stream: string, consumer: string, request: PullRequest): Promise<PullResult> {
  return new Promise((resolve, reject) => {
    const inbox = createInbox();
    const messages: Msg[] = [];
    let done = false;
    const finish = (status: number | null, description: string, err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.unsubscribe();
      if (err) reject(err);
      else resolve({ messages, status, description });
    };
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return finish(null, '', err);
        const code = msg.headers?.code ?? 0;
        // Status messages have no payload; 100 is a flow-control/heartbeat notice, not an end.
        if (code !== 0 && msg.data.length === 0) {
          if (code !== 100) finish(code, msg.headers?.description ?? '');
          return;
        }
        messages.push(msg);
        if (messages.length >= request.batch) finish(null, '');
      },
    });
    const timer = setTimeout(
      () => finish(null, '', new StorageError(`JetStream did not answer a read of ${stream} within ${request.timeoutMs} ms`)),
      request.timeoutMs,
    );
    const body: Record<string, unknown> = { batch: request.batch };
    if (request.maxBytes !== undefined) body.max_bytes = request.maxBytes;
    if (request.noWait) body.no_wait = true;
    else if (request.expiresMs !== undefined) body.expires = nanos(request.expiresMs);
    try {
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(body), { reply: inbox });
    } catch (err) {
      finish(null, '', err as Error);
    }
  });
}

export type ConsumerStart =
  | { readonly kind: 'sequence'; readonly sequence: number }
  | { readonly kind: 'time'; readonly time: Date }
  | { readonly kind: 'last-per-subject'; readonly filter: string };

export interface ConsumerFactoryOptions {
  /** Server-side safety net for consumers we lose track of (crash, lost connection). */
  readonly inactiveThresholdMs: number;
}

export function consumerConfig(start: ConsumerStart, headersOnly: boolean, inactiveThresholdMs: number): Partial<ConsumerConfig> {
  const config: Partial<ConsumerConfig> = {
    ack_policy: AckPolicy.None,
    inactive_threshold: nanos(inactiveThresholdMs),
    mem_storage: true,
    num_replicas: 1,
  };
  if (headersOnly) config.headers_only = true;
  switch (start.kind) {
    case 'sequence':
      config.deliver_policy = DeliverPolicy.StartSequence;
      config.opt_start_seq = start.sequence;
      break;
    case 'time':
      config.deliver_policy = DeliverPolicy.StartTime;
      config.opt_start_time = start.time.toISOString();
      break;
    case 'last-per-subject':
      config.deliver_policy = DeliverPolicy.LastPerSubject;
      config.filter_subject = start.filter;
      break;
  }
  return config;
}

interface IdleConsumer {
  readonly stream: string;
  readonly name: string;
  readonly since: number;
}

/**
 * Idle read consumers keyed by the stream sequence they will deliver next. Bounded by `max`;
 * the least recently parked one is deleted first, and any idle longer than `maxIdleMs`.
 */
export class ReadConsumerPool {
  private readonly idle = new Map<string, IdleConsumer>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly logger: Logger,
    private readonly options: { readonly max: number; readonly maxIdleMs: number; readonly inactiveThresholdMs: number },
  ) {
    this.timer = setInterval(() => this.sweep(), Math.max(100, Math.min(5_000, options.maxIdleMs / 2)));
    this.timer.unref();
  }

  get size(): number {
    return this.idle.size;
  }

  /** A consumer of `stream` positioned at `nextSequence`, taken out of the pool, or a new one. */
  async acquire(stream: string, nextSequence: number): Promise<{ name: string; reused: boolean }> {
    const key = poolKey(stream, nextSequence);
    const parked = this.idle.get(key);
    if (parked) {
      this.idle.delete(key);
      return { name: parked.name, reused: true };
    }
    return { name: await this.create(stream, { kind: 'sequence', sequence: nextSequence }), reused: false };
  }

  /** Parks a consumer that will deliver `nextSequence` next, for the read that continues there. */
  release(stream: string, nextSequence: number, name: string): void {
    if (this.closed) return this.delete(stream, name);
    const key = poolKey(stream, nextSequence);
    const existing = this.idle.get(key);
    if (existing) this.delete(existing.stream, existing.name);
    this.idle.delete(key);
    this.idle.set(key, { stream, name, since: Date.now() });
    while (this.idle.size > this.options.max) {
      const [oldestKey, oldest] = this.idle.entries().next().value as [string, IdleConsumer];
      this.idle.delete(oldestKey);
      this.delete(oldest.stream, oldest.name);
    }
  }

  async create(stream: string, start: ConsumerStart, headersOnly = false): Promise<string> {
    const info = await this.jsm.consumers.add(stream, consumerConfig(start, headersOnly, this.options.inactiveThresholdMs));
    return info.name;
  }

  /** Deletes a consumer on the server in the background; failures are logged (the server expires it anyway). */
  delete(stream: string, name: string): void {
    this.jsm.consumers.delete(stream, name).catch((err: unknown) => {
      this.logger.debug({ err, stream, consumer: name }, 'could not delete read consumer; the server expires it');
    });
  }

  /** Forgets the consumers of a stream that was deleted (the server deleted them with it). */
  forgetStream(stream: string): void {
    for (const [key, c] of this.idle) if (c.stream === stream) this.idle.delete(key);
  }

  /** Deletes every idle consumer and stops. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const all = [...this.idle.values()];
    this.idle.clear();
    await Promise.allSettled(all.map((c) => this.jsm.consumers.delete(c.stream, c.name)));
  }

  private sweep(): void {
    const horizon = Date.now() - this.options.maxIdleMs;
    for (const [key, c] of this.idle) {
      if (c.since > horizon) break; // insertion order is parking order
      this.idle.delete(key);
      this.delete(c.stream, c.name);
    }
  }
}

function poolKey(stream: string, nextSequence: number): string {
  return `${stream} ${nextSequence}`;
}

export interface ScanOptions {
  readonly start: ConsumerStart;
  readonly headersOnly?: boolean;
  readonly batch: number;
  readonly timeoutMs: number;
  /** Stop after this stream sequence (inclusive). */
  readonly untilSequence?: number;
}

/**
 * Reads a whole stream (or what it has from `start`) through a temporary consumer, a batch at a
 * time; the consumer is deleted at the end. Returning false from `onBatch` stops the scan.
 */
export async function scanStream(
  nc: NatsConnection,
  pool: ReadConsumerPool,
  stream: string,
  options: ScanOptions,
  onBatch: (messages: Msg[]) => boolean | void,
): Promise<void> {
  const consumer = await pool.create(stream, options.start, options.headersOnly ?? false);
  try {
    for (;;) {
      const result = await pull(nc, stream, consumer, { batch: options.batch, noWait: true, timeoutMs: options.timeoutMs });
      let messages = result.messages;
      if (options.untilSequence !== undefined) {
        const until = options.untilSequence;
        const cut = messages.findIndex((m) => sequenceOf(m) > until);
        if (cut >= 0) messages = messages.slice(0, cut);
        if (messages.length > 0 && onBatch(messages) === false) return;
        if (cut >= 0) return;
      } else if (messages.length > 0 && onBatch(messages) === false) return;
      if (result.status === PullStatus.NoMessages || result.status === PullStatus.Timeout) return;
      if (result.status !== null) throw new StorageError(`reading ${stream} failed: ${result.status} ${result.description}`);
    }
  } finally {
    pool.delete(stream, consumer);
  }
}

/** Stream sequence of a message delivered by a consumer (0 when it cannot be told). */
export function sequenceOf(msg: Msg): number {
  return parseDelivery(msg.reply)?.streamSequence ?? 0;
}
