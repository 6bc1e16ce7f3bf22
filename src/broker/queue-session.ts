/**
 * The queue half of a streaming session (docs/protocol.md, "Queues"): enqueue, pull receive,
 * pushed deliveries under credits (`work`), and ack/nack/extend/reject — the HTTP API's
 * operations over the session's connection.
 *
 * A `work` subscription holds at most `credits` unsettled deliveries the client asked for: each
 * pushed message spends one, each `credit` frame for the subscription gives more back (the SDK
 * sends one as each job finishes). Leases pushed to this connection and not yet settled are
 * released for redelivery at once when the connection ends, instead of waiting for their leases
 * to expire.
 */
import type { Logger } from 'pino';
import {
  assertValidQueueName,
  deliveriesJson,
  enqueueMessageFromWire,
  QueueError,
  type QueueService,
} from '../queues/index.js';
import { StreamError } from './errors.js';
import type { EnqueueFrame, ReceiveFrame, RequestId, ServerFrame, SettleFrame, WorkFrame } from './frames.js';

/** What a queue session needs from the session it belongs to. */
export interface QueueHost {
  readonly id: string;
  readonly logger: Logger;
  send(frame: ServerFrame | string): void;
  /** False while the connection's send buffer is over its bound: pushing waits for `drained()`. */
  canSend(): boolean;
  /** Throws FORBIDDEN unless the connection may `action` the queue (same patterns as topics). */
  authorize(action: 'read' | 'write', name: string): void;
  /** True when a stream subscription already uses the name. */
  hasSubscription(sub: string): boolean;
  /** A pushed delivery failed: reported as an `error` frame with `sub`; the work subscription is gone. */
  workFailed(sub: string, err: unknown): void;
}

export interface QueueSessionLimits {
  readonly maxBatchRecords: number;
  readonly maxWaitMs: number;
  readonly maxWorkSubscriptions: number;
}

/** How long one pushed-delivery long poll waits before it looks again. */
const WORK_POLL_MS = 10_000;
/** Most credits one work subscription holds. */
const MAX_WORK_CREDITS = 1_000;
/** Unsettled pushed leases remembered per connection (to release them when it ends). */
const MAX_OWNED_LEASES = 100_000;

interface WorkSubscription {
  readonly sub: string;
  readonly queue: string;
  readonly visibilityMs: number | undefined;
  readonly worker: string;
  readonly abort: AbortController;
  credits: number;
  pumping: boolean;
  closed: boolean;
}

export class QueueSession {
  private readonly work = new Map<string, WorkSubscription>();
  private readonly parked = new Set<WorkSubscription>();
  /** receipt → queue, for pushed leases not yet settled. */
  private readonly owned = new Map<string, string>();
  private readonly abort = new AbortController();
  private closed = false;

  constructor(
    private readonly queues: QueueService,
    private readonly host: QueueHost,
    private readonly limits: QueueSessionLimits,
  ) {}

  hasWork(sub: string): boolean {
    return this.work.has(sub);
  }

  /** The answer to one queue request frame. */
  async handle(frame: EnqueueFrame | ReceiveFrame | WorkFrame | SettleFrame | { type: 'stop_work'; id: RequestId; sub: string }): Promise<ServerFrame> {
    switch (frame.type) {
      case 'enqueue':
        return this.enqueue(frame);
      case 'receive':
        return this.receive(frame);
      case 'work':
        return this.startWork(frame);
      case 'stop_work':
        this.stopWork(frame.sub);
        return { type: 'work_stopped', id: frame.id, sub: frame.sub };
      case 'ack':
      case 'nack':
      case 'extend':
      case 'reject':
        return this.settle(frame);
    }
  }

  private queueName(queue: string, action: 'read' | 'write'): string {
    assertValidQueueName(queue);
    this.host.authorize(action, queue);
    return queue;
  }

  private async enqueue(frame: EnqueueFrame): Promise<ServerFrame> {
    const queue = this.queueName(frame.queue, 'write');
    if (frame.messages.length > this.limits.maxBatchRecords) {
      throw new StreamError('MESSAGE_TOO_LARGE', `batch of ${frame.messages.length} messages exceeds the limit of ${this.limits.maxBatchRecords}`);
    }
    const ids = await this.queues.enqueue(queue, frame.messages.map(enqueueMessageFromWire));
    return { type: 'enqueued', id: frame.id, ids };
  }

  private async receive(frame: ReceiveFrame): Promise<ServerFrame> {
    const queue = this.queueName(frame.queue, 'read');
    const options: { max?: number; visibilityMs?: number; worker: string } = { worker: this.host.id };
    if (frame.max !== undefined) options.max = frame.max;
    if (frame.visibility_ms !== undefined) options.visibilityMs = frame.visibility_ms;
    const waitMs = Math.min(frame.wait_ms ?? 0, this.limits.maxWaitMs);
    const got = await this.queues.receive(queue, options, waitMs, this.abort.signal);
    return { type: 'received', id: frame.id, messages: deliveriesJson(got) };
  }

  private async startWork(frame: WorkFrame): Promise<ServerFrame> {
    const queue = this.queueName(frame.queue, 'read');
    if (this.work.has(frame.sub) || this.host.hasSubscription(frame.sub)) {
      throw new StreamError('SUBSCRIPTION_EXISTS', `subscription ${JSON.stringify(frame.sub)} already exists on this connection`);
    }
    if (this.work.size >= this.limits.maxWorkSubscriptions) {
      throw new StreamError('RATE_LIMITED', `more than ${this.limits.maxWorkSubscriptions} work subscriptions on one connection`);
    }
    await this.queues.describe(queue); // QUEUE_NOT_FOUND now rather than from the first push
    const w: WorkSubscription = {
      sub: frame.sub,
      queue,
      visibilityMs: frame.visibility_ms,
      worker: `${this.host.id}/${frame.sub}`,
      abort: new AbortController(),
      credits: frame.credits,
      pumping: false,
      closed: false,
    };
    this.work.set(frame.sub, w);
    // After the `working` answer has gone out: the first push can never overtake it.
    setImmediate(() => this.pump(w));
    return { type: 'working', id: frame.id, sub: frame.sub };
  }

  /** A `credit` frame for a work subscription; false when `sub` is not one. */
  credit(sub: string, records: number): boolean {
    const w = this.work.get(sub);
    if (w === undefined) return false;
    w.credits = Math.min(MAX_WORK_CREDITS, w.credits + records);
    this.pump(w);
    return true;
  }

  private stopWork(sub: string): void {
    const w = this.work.get(sub);
    if (w === undefined) throw new StreamError('SUBSCRIPTION_NOT_FOUND', `no work subscription ${JSON.stringify(sub)} on this connection`);
    this.closeWork(w);
  }

  private closeWork(w: WorkSubscription): void {
    w.closed = true;
    w.abort.abort();
    this.parked.delete(w);
    if (this.work.get(w.sub) === w) this.work.delete(w.sub);
  }

  /** Long-polls the queue while the subscription has credits and the connection can take more. */
  private pump(w: WorkSubscription): void {
    if (w.pumping || w.closed || this.closed) return;
    w.pumping = true;
    void (async () => {
      try {
        while (!w.closed && w.credits > 0) {
          if (!this.host.canSend()) {
            this.parked.add(w);
            return;
          }
          const options: { max: number; visibilityMs?: number; worker: string } = { max: w.credits, worker: w.worker };
          if (w.visibilityMs !== undefined) options.visibilityMs = w.visibilityMs;
          const got = await this.queues.receive(w.queue, options, WORK_POLL_MS, w.abort.signal);
          if (got.length === 0) continue;
          if (w.closed || this.closed) {
            await this.release(w.queue, got.map((d) => d.receipt));
            return;
          }
          w.credits -= got.length;
          for (const d of got) if (this.owned.size < MAX_OWNED_LEASES) this.owned.set(d.receipt, w.queue);
          this.host.send({ type: 'jobs', sub: w.sub, queue: w.queue, messages: deliveriesJson(got) });
        }
      } catch (err) {
        if (!w.closed && !this.closed) {
          this.closeWork(w);
          this.host.workFailed(w.sub, err);
        }
      } finally {
        w.pumping = false;
      }
    })();
  }

  /** The connection's send buffer drained: resume the subscriptions that waited for it. */
  drained(): void {
    if (this.parked.size === 0) return;
    const parked = [...this.parked];
    this.parked.clear();
    for (const w of parked) this.pump(w);
  }

  private async settle(frame: SettleFrame): Promise<ServerFrame> {
    const queue = this.queueName(frame.queue, 'read');
    try {
      switch (frame.type) {
        case 'ack':
          await this.queues.ack(queue, frame.receipts);
          break;
        case 'nack':
          await this.queues.nack(queue, frame.receipts, frame.delay_ms, frame.error);
          break;
        case 'extend':
          await this.queues.extend(queue, frame.receipts, frame.visibility_ms);
          break;
        case 'reject':
          await this.queues.reject(queue, frame.receipts, frame.error);
          break;
      }
    } finally {
      // Settled or refused, these leases are no longer this connection's to release.
      if (frame.type !== 'extend') for (const r of frame.receipts) this.owned.delete(r);
    }
    return { type: 'settled', id: frame.id };
  }

  private async release(queue: string, receipts: readonly string[]): Promise<void> {
    try {
      await this.queues.nack(queue, receipts, 0, 'worker disconnected');
    } catch (err) {
      // Leases that expired or were settled meanwhile are refused; the rest were released.
      if (!(err instanceof QueueError && err.code === 'UNKNOWN_RECEIPT')) {
        this.host.logger.warn({ err, session: this.host.id, queue }, 'could not release leases of a closed connection; they return when their leases expire');
      }
    }
  }

  /** Stops every push and long poll, and releases the pushed leases not settled. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    for (const w of [...this.work.values()]) this.closeWork(w);
    const byQueue = new Map<string, string[]>();
    for (const [receipt, queue] of this.owned) {
      let list = byQueue.get(queue);
      if (!list) byQueue.set(queue, (list = []));
      list.push(receipt);
    }
    this.owned.clear();
    for (const [queue, receipts] of byQueue) {
      for (let i = 0; i < receipts.length; i += 1_000) await this.release(queue, receipts.slice(i, i + 1_000));
    }
  }
}
