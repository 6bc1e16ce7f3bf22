/**
 * Reads many stored messages of one channel subject in a few round trips: a short-lived
 * ephemeral consumer (`ack_policy: none`, memory, filtered on the subject, starting at a
 * sequence) and one pull of exactly what it has pending. Direct get answers one message per
 * request, which is right for the usual gap of one or two but cannot catch up with a busy
 * channel (one round trip per message: about a thousand a second on a loaded machine).
 *
 * Cost: consumer create, consumer lookup, one pull (plus the transfer); the delete is not awaited
 * and `inactive_threshold` removes a consumer whose delete was lost.
 */
import { AckPolicy, DeliverPolicy, nanos, type JetStreamClient, type JetStreamManager } from 'nats';

/** A message read from the stream. */
export interface StoredMessage {
  readonly seq: number;
  readonly data: Uint8Array;
  /** `Brook-Time` (ms since the epoch), else when JetStream stored it. */
  readonly timestamp: number;
  /** Published when its node saw the channel empty (`Brook-First`). */
  readonly first: boolean;
}

/** How long an abandoned reader consumer lives on the server. */
const INACTIVE_MS = 10_000;
/** Upper bound of a pull's wait when messages vanish (age limit) between create and pull. */
const PULL_EXPIRES_MS = 2_000;
/** Batch reads at once per node: each holds a server-side consumer and up to `max` messages. */
export const MAX_CONCURRENT_BATCH_READS = 16;

export class StreamBatchReader {
  private active = 0;

  constructor(
    private readonly jsm: () => JetStreamManager,
    private readonly js: JetStreamClient,
    private readonly maxConcurrent = MAX_CONCURRENT_BATCH_READS,
  ) {}

  /** Batch reads under way. */
  get inFlight(): number {
    return this.active;
  }

  /**
   * Up to `max` messages of `subject` at or after sequence `from`, in stream order; `null`, at
   * once, when {@link maxConcurrent} reads are already under way (many channels catching up at
   * the same time: the caller reads one message instead, and comes back for the rest).
   */
  async read(stream: string, subject: string, from: number, max: number): Promise<StoredMessage[] | null> {
    if (this.active >= this.maxConcurrent) return null;
    this.active++;
    try {
      return await this.readBatch(stream, subject, from, max);
    } finally {
      this.active--;
    }
  }

  private async readBatch(stream: string, subject: string, from: number, max: number): Promise<StoredMessage[]> {
    const jsm = this.jsm();
    const info = await jsm.consumers.add(stream, {
      filter_subject: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, from),
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(INACTIVE_MS),
    });
    try {
      const want = Math.min(max, info.num_pending);
      const out: StoredMessage[] = [];
      if (want === 0) return out;
      const consumer = await this.js.consumers.get(stream, info.name);
      const messages = await consumer.fetch({ max_messages: want, expires: PULL_EXPIRES_MS });
      for await (const m of messages) {
        const h = m.headers;
        out.push({
          seq: m.seq,
          data: m.data,
          timestamp: Number(h?.get('Brook-Time')) || Math.floor(m.info.timestampNanos / 1_000_000),
          first: h?.get('Brook-First') === '1',
        });
        if (out.length >= want) break;
      }
      return out;
    } finally {
      jsm.consumers.delete(stream, info.name).catch(() => undefined); // inactive_threshold removes it otherwise
    }
  }
}
