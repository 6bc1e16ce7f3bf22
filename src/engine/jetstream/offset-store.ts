import type { JetStreamManager, KV, NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { GroupOffsetRecord, OffsetStore } from '../groups/index.js';
import { type ReadConsumerPool, scanStream } from './consumers.js';
import type { Names } from './names.js';
import { topicToken } from './names.js';
import { toBrookError } from './nats-errors.js';

interface StoredOffset {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string;
  readonly committedAt: number;
}

/**
 * Committed offsets in a KV bucket (`<prefix>_offsets`, history 1), one key per group and
 * partition: `<topic token>.<group token>.<partition>`. The topic comes first so that deleting
 * a topic purges all of its offsets with one subject-filtered purge.
 */
export class KvOffsetStore implements OffsetStore {
  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly names: Names,
    private readonly pool: ReadConsumerPool,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    /** Whether a topic exists now: offsets of deleted topics are not loaded. */
    private readonly topicExists: (topic: string) => boolean,
  ) {}

  private get stream(): string {
    return `KV_${this.names.offsetsBucket}`;
  }

  async load(): Promise<GroupOffsetRecord[]> {
    const info = await this.jsm.streams.info(this.stream);
    if (info.state.messages === 0) return [];
    const out: GroupOffsetRecord[] = [];
    const start = { kind: 'last-per-subject', filter: `$KV.${this.names.offsetsBucket}.>` } as const;
    await scanStream(this.nc, this.pool, this.stream, { start, batch: 1000, timeoutMs: this.timeoutMs }, (msgs) => {
      for (const msg of msgs) {
        const op = msg.headers?.get('KV-Operation') ?? '';
        if (op === 'DEL' || op === 'PURGE') continue;
        try {
          const o = JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString('utf8')) as StoredOffset;
          if (this.topicExists(o.topic)) out.push(o);
        } catch (err) {
          this.logger.error({ err, subject: msg.subject }, 'unreadable committed offset in the offsets bucket; ignoring it');
        }
      }
    });
    return out;
  }

  async persist(records: readonly GroupOffsetRecord[]): Promise<void> {
    // Issued in call order on one connection, so for one key a later commit is stored later.
    const writes = Promise.all(
      records.map((r) => {
        const value: StoredOffset = {
          group: r.group,
          topic: r.topic,
          partition: r.partition,
          offset: r.offset,
          metadata: r.metadata,
          committedAt: r.committedAt,
        };
        return this.kv.put(this.names.offsetKey(topicToken(r.topic), r.group, r.partition), JSON.stringify(value));
      }),
    );
    try {
      await writes;
    } catch (err) {
      throw toBrookError(err, 'committing offsets', false);
    }
  }

  /** Removes every committed offset of a topic (deleted, or created anew under an old name). */
  async purgeTopic(topic: string): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: this.names.offsetSubjectsOfTopic(topicToken(topic)) });
  }
}
