/**
 * Durable history of one namespace: every channel of the namespace appends to ONE topic
 * (`_channels.<namespace>`, one partition), keyed by channel, with the channel offset and epoch
 * in headers (docs/channels.md, "Durable storage"). Publishes are group-committed: those arriving
 * while an append is in flight go together in the next one.
 */
import type { Logger } from 'pino';
import { TopicExistsError, type Engine, type ProduceRecord } from '../engine/index.js';
import type { Channel } from './channel.js';
import { ChannelError } from './errors.js';
import type { Namespace } from './namespaces.js';
import type { Publication } from './publication.js';

export interface DurableLimits {
  readonly maxPendingPublishes: number;
  readonly maxPendingBytes: number;
  readonly maxRebuildRecords: number;
}

interface Pending {
  readonly channel: Channel;
  readonly pub: Publication;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** A record read back when rebuilding. */
export interface RebuiltMessage {
  readonly channel: string;
  readonly offset: number;
  readonly epoch: string;
  readonly data: string;
  readonly timestamp: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The topic a durable namespace is stored in. */
export function durableTopic(namespace: string): string {
  return `_channels.${namespace === '' ? '_default' : namespace}`;
}

export class DurableLog {
  readonly topic: string;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private inFlight: Pending[] | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly namespace: Namespace,
    private readonly limits: DurableLimits,
    private readonly logger: Logger,
  ) {
    this.topic = durableTopic(namespace.name);
  }

  /** Creates the topic if needed. */
  async open(): Promise<void> {
    try {
      await this.engine.createTopic(this.topic, { partitions: 1, retentionMs: this.namespace.historyTtlMs });
    } catch (err) {
      if (!(err instanceof TopicExistsError)) throw err;
    }
  }

  /**
   * Reads back the tail that recovery can still use: at most `historyTtlMs` old and at most
   * `maxRebuildRecords` records; records that are not channel messages are skipped.
   */
  async *rebuild(now: number): AsyncGenerator<RebuiltMessage[]> {
    const wm = await this.engine.watermarks(this.topic, 0);
    const byAge = await this.engine.offsetForTimestamp(this.topic, 0, now - this.namespace.historyTtlMs);
    let offset = Math.max(wm.lowWatermark, wm.highWatermark - this.limits.maxRebuildRecords, byAge);
    let skipped = 0;
    while (offset < wm.highWatermark) {
      const page = await this.engine.read(this.topic, 0, offset, { maxRecords: 5_000, maxBytes: 8 * 1024 * 1024 });
      const out: RebuiltMessage[] = [];
      for (const r of page.records) {
        const o = Number(r.headers['o']);
        const e = r.headers['e'];
        if (r.key === null || r.value === null || e === undefined || !Number.isSafeInteger(o) || o < 0) {
          skipped++;
          continue;
        }
        out.push({ channel: decoder.decode(r.key), offset: o, epoch: e, data: decoder.decode(r.value), timestamp: r.timestamp });
      }
      if (out.length > 0) yield out;
      if (page.nextOffset <= offset) break;
      offset = page.nextOffset;
    }
    if (skipped > 0) this.logger.warn({ topic: this.topic, skipped }, 'records that are not channel messages were skipped while rebuilding');
  }

  /** Queues a publication whose offset is already assigned; resolves once it is durable. */
  append(channel: Channel, pub: Publication): Promise<void> {
    if (this.queue.length >= this.limits.maxPendingPublishes || this.queuedBytes + pub.data.length > this.limits.maxPendingBytes) {
      return Promise.reject(
        new ChannelError('RATE_LIMITED', `too many publishes waiting for the disk in namespace "${this.namespace.name}"`, 100),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ channel, pub, resolve, reject });
      this.queuedBytes += pub.data.length;
      channel.pending++;
      this.flush();
    });
  }

  /** Whether a publish would be refused for a full queue right now. */
  get full(): boolean {
    return this.queue.length >= this.limits.maxPendingPublishes || this.queuedBytes >= this.limits.maxPendingBytes;
  }

  private flush(): void {
    if (this.inFlight !== null || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.inFlight = batch;
    const records: ProduceRecord[] = batch.map(({ channel, pub }) => ({
      key: encoder.encode(channel.name.name),
      value: encoder.encode(pub.data),
      headers: { o: String(pub.offset), e: channel.epoch },
    }));
    this.engine.append(this.topic, 0, records).then(
      () => {
        this.inFlight = null;
        for (const p of batch) {
          p.channel.pending--;
          p.channel.commit(p.pub);
          p.resolve();
        }
        this.flush();
      },
      (err: unknown) => {
        this.inFlight = null;
        // Everything queued behind the failed batch has offsets after it: fail it too and roll
        // every channel back to its first failed offset, so offsets stay gap-free.
        const failed = [...batch, ...this.queue];
        this.queue = [];
        this.queuedBytes = 0;
        this.logger.error({ err, topic: this.topic, publishes: failed.length }, 'durable channel append failed');
        const error =
          err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code === 'PARTITION_BUSY'
            ? new ChannelError('RATE_LIMITED', 'the log is busy; retry', 1000, { cause: err })
            : new ChannelError('STORAGE_ERROR', 'the message could not be stored', undefined, { cause: err });
        for (const p of failed) {
          p.channel.pending--;
          if (p.pub.offset < p.channel.next) p.channel.next = p.pub.offset;
          p.reject(error);
        }
      },
    );
  }
}
