import type { KV } from 'nats';
import type { Logger } from 'pino';
import { topicToken } from '../../engine/jetstream/names.js';
import type { Receipt } from './receipts.js';

/**
 * Lease deadlines moved by `extend`, shared by every node of a prefix in one KV bucket:
 * key `<queue token>.<stream seq>` → `<delivery count>.<deadline, epoch ms base 36>`, history 1.
 *
 * A receipt carries the deadline of its delivery and stays the same when its lease is extended
 * (the HTTP and WebSocket extend answers carry no receipt), so a receipt past its own deadline is
 * still current when an extension for the same delivery (same delivery count) runs later. Only
 * such late receipts cost a lookup. The bucket's `max_age` is the longest lease, so entries never
 * outlive what they describe by more than that; `max_bytes` bounds it, and when full an
 * extension is not recorded (logged): its worker's ack after the receipt's own deadline is then
 * refused and the message delivered again — at-least-once, never an ack for the wrong worker.
 */
export class LeaseExtensions {
  constructor(
    private readonly kv: KV,
    private readonly logger: Logger,
  ) {}

  async record(queue: string, r: Receipt, deadline: number): Promise<void> {
    try {
      await this.kv.put(key(queue, r), `${r.deliveries}.${Math.floor(deadline).toString(36)}`);
    } catch (err) {
      this.logger.warn({ err, queue, id: r.streamSeq }, 'could not record a lease extension; a late ack of this delivery will be refused');
    }
  }

  /** The deadline an extension gave this delivery, or null when it was never extended (or the lookup failed). */
  async deadline(queue: string, r: Receipt): Promise<number | null> {
    let entry;
    try {
      entry = await this.kv.get(key(queue, r));
    } catch (err) {
      this.logger.warn({ err, queue, id: r.streamSeq }, 'could not look up a lease extension; treating the receipt as expired');
      return null;
    }
    if (!entry || entry.operation !== 'PUT') return null;
    const [deliveries, deadline] = entry.string().split('.');
    if (Number(deliveries) !== r.deliveries || deadline === undefined) return null; // an extension of another delivery
    const ms = parseInt(deadline, 36);
    return Number.isSafeInteger(ms) ? ms : null;
  }
}

const key = (queue: string, r: Receipt): string => `${topicToken(queue)}.${r.streamSeq}`;
