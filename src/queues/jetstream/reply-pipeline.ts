import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';

export interface PipelinedRequest {
  readonly subject: string;
  readonly data: Uint8Array | string;
  readonly headers?: MsgHdrs;
}

interface Batch {
  readonly replies: (Msg | null)[];
  left: number;
  readonly tokens: number[];
  readonly resolve: (replies: (Msg | null)[]) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Many requests, one promise: each request of a batch gets its own reply subject under one
 * wildcard subscription, and the batch resolves when every reply arrived or `timeoutMs` passed
 * (missing replies are null). Enqueues (PubAcks) and settles (JetStream ack confirmations) use it
 * so a batch of N messages costs one promise and one timer, not N of each.
 */
export class ReplyPipeline {
  private readonly inbox = createInbox();
  private readonly sub: Subscription;
  private readonly pending = new Map<number, { batch: Batch; index: number }>();
  private nextToken = 0;

  constructor(private readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const token = Number(msg.subject.slice(this.inbox.length + 1));
        const entry = this.pending.get(token);
        if (!entry) return; // late: its batch timed out
        this.pending.delete(token);
        const { batch, index } = entry;
        batch.replies[index] = msg;
        if (--batch.left === 0) this.settle(batch);
      },
    });
  }

  requestAll(requests: readonly PipelinedRequest[], timeoutMs: number): Promise<(Msg | null)[]> {
    if (requests.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const batch: Batch = {
        replies: new Array<Msg | null>(requests.length).fill(null),
        left: requests.length,
        tokens: [],
        resolve,
        timer: setTimeout(() => this.settle(batch), timeoutMs),
      };
      for (let i = 0; i < requests.length; i++) {
        const token = this.nextToken++;
        if (this.nextToken >= Number.MAX_SAFE_INTEGER) this.nextToken = 0;
        batch.tokens.push(token);
        this.pending.set(token, { batch, index: i });
        const r = requests[i]!;
        this.nc.publish(r.subject, r.data, { reply: `${this.inbox}.${token}`, ...(r.headers ? { headers: r.headers } : {}) });
      }
    });
  }

  private settle(batch: Batch): void {
    clearTimeout(batch.timer);
    for (const token of batch.tokens) this.pending.delete(token);
    batch.resolve(batch.replies);
  }

  close(): void {
    this.sub.unsubscribe();
    for (const { batch } of [...this.pending.values()]) this.settle(batch);
  }
}
