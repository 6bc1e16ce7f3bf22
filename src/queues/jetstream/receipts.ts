import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Receipts of the native queue backend (docs/queues.md, "Receipts and late acks"):
 *
 * ```
 *  <stream seq>.<delivery count>.<consumer seq>.<delivered at>.<lease ms>.<mac>     numbers base 36
 *  └─────────── rebuild the JetStream ack subject ──────┘ └── deadline ──┘  16 chars base64url
 * ```
 *
 * With the queue name (every call carries it), the first three rebuild the ack subject
 * `$JS.ACK.<stream>.brook.<dc>.<sseq>.<cseq>.0.0`, so any node settles any receipt. `delivered at`
 * (epoch ms) + `lease ms` is the lease deadline: after it the receipt is refused, because
 * JetStream 2.9 confirms an ack of a stale delivery and would settle the message for the worker
 * now holding it. The MAC (HMAC-SHA256 over the queue name and the five fields, keyed per prefix,
 * first 96 bits) makes the deadline tamper-evident: a worker cannot lengthen its own lease, nor
 * use a receipt on another queue. At most 11+4+11+9+5+16 characters and 5 dots = 61, under the
 * 64 the HTTP and WebSocket schemas accept.
 */
export interface Receipt {
  readonly streamSeq: number;
  readonly deliveries: number;
  readonly consumerSeq: number;
  /** Epoch ms the lease started (on the delivering node's clock). */
  readonly deliveredAt: number;
  /** Lease length from `deliveredAt`. */
  readonly leaseMs: number;
}

/** The JetStream coordinates of a delivery, as its ack subject carries them. */
export type Delivered = Pick<Receipt, 'streamSeq' | 'deliveries' | 'consumerSeq'>;

/** Bytes of the per-prefix HMAC key. */
export const RECEIPT_KEY_BYTES = 32;
const MAC_CHARS = 16;
const FIELD = '[0-9a-z]{1,11}';
const RECEIPT = new RegExp(`^(${FIELD})\\.([0-9a-z]{1,4})\\.(${FIELD})\\.([0-9a-z]{1,9})\\.([0-9a-z]{1,5})\\.([A-Za-z0-9_-]{${MAC_CHARS}})$`);
/** The longest lease a receipt can carry (base 36, 5 digits). */
const MAX_LEASE_MS = parseInt('zzzzz', 36);

/** Signs and checks receipts with one prefix's key; holds no other state. */
export class ReceiptCodec {
  constructor(private readonly key: Buffer) {
    if (key.length < 16) throw new Error('receipt key must be at least 16 bytes');
  }

  format(queue: string, r: Receipt): string {
    const leaseMs = Math.min(MAX_LEASE_MS, Math.max(0, Math.floor(r.leaseMs)));
    const body = [r.streamSeq, r.deliveries, r.consumerSeq, Math.max(0, Math.floor(r.deliveredAt)), leaseMs].map((n) => n.toString(36)).join('.');
    return `${body}.${this.mac(queue, body)}`;
  }

  /** The receipt when it parses and its MAC is this prefix's for `queue`; null otherwise. */
  parse(queue: string, raw: string): Receipt | null {
    const m = RECEIPT.exec(raw);
    if (!m) return null;
    const body = raw.slice(0, raw.length - MAC_CHARS - 1);
    const expected = Buffer.from(this.mac(queue, body));
    if (!timingSafeEqual(expected, Buffer.from(m[6]!))) return null;
    const [streamSeq, deliveries, consumerSeq, deliveredAt, leaseMs] = [m[1], m[2], m[3], m[4], m[5]].map((t) => parseInt(t!, 36)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    if (![streamSeq, consumerSeq].every(Number.isSafeInteger)) return null;
    return { streamSeq, deliveries, consumerSeq, deliveredAt, leaseMs };
  }

  private mac(queue: string, body: string): string {
    return createHmac('sha256', this.key).update(queue).update('\n').update(body).digest('base64url').slice(0, MAC_CHARS);
  }
}

/** The lease deadline a receipt states. */
export const deadlineOf = (r: Receipt): number => r.deliveredAt + r.leaseMs;
