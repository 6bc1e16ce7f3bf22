import type { KV, KvEntry, Msg, NatsConnection, QueuedIterator, JetStreamManager } from 'nats';
import type { Logger } from 'pino';
import { StorageError, TopicExistsError, TopicNotFoundError } from '../errors.js';
import type { TopicConfig } from '../types.js';
import { type ReadConsumerPool, scanStream, sequenceOf } from './consumers.js';
import { jsErrorCode, JsErr } from './nats-errors.js';
import { topicToken } from './names.js';

/**
 * What the topics bucket stores under the topic's token. `state` makes creation and deletion,
 * which touch many streams, safe to interrupt: only `ready` topics exist for readers, and a
 * record stuck in `creating` (older than {@link STALE_CREATION_MS}) or `deleting` is taken over
 * by the next createTopic of that name, which removes the leftovers first.
 */
export interface TopicMeta {
  readonly name: string;
  /** Incarnation: differs between a topic and a later one of the same name. */
  readonly id: string;
  readonly config: TopicConfig;
  readonly state: 'creating' | 'ready' | 'deleting';
  readonly since: number;
}

export interface TopicEntry {
  readonly meta: TopicMeta;
  readonly token: string;
  /** KV revision of the record, for compare-and-set. */
  readonly revision: number;
  roundRobin: number;
}

export interface Claim {
  readonly revision: number;
  /** The record replaced an interrupted creation or deletion: its streams may still exist. */
  readonly tookOver: boolean;
}

const STALE_CREATION_MS = 120_000;

export interface CatalogEvents {
  /** A topic appeared, disappeared or changed on any node (including this one). */
  readonly changed: (deletedTopic: string | null) => void;
}

/**
 * The topics of one prefix: the KV bucket is the truth, and this keeps a copy of its `ready`
 * records in memory, loaded on open and kept current by a KV watch, so appends and reads do not
 * ask the server which topics exist. A miss asks the bucket once (a topic another node created
 * a moment ago). Bounded by the number of topics, which createTopic bounds with `maxTopics`.
 */
export class TopicCatalog {
  private readonly topics = new Map<string, TopicEntry>();
  private watcher: QueuedIterator<KvEntry> | undefined;
  private watching: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly bucket: string,
    private readonly pool: ReadConsumerPool,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
    private readonly events: CatalogEvents,
  ) {}

  get size(): number {
    return this.topics.size;
  }

  /** Loads every record, then follows changes from the stream sequence the load started at. */
  async load(): Promise<void> {
    const stream = `KV_${this.bucket}`;
    const info = await this.jsm.streams.info(stream);
    const loadedUpTo = info.state.last_seq;
    if (info.state.messages > 0) {
      const start = { kind: 'last-per-subject', filter: `$KV.${this.bucket}.>` } as const;
      await scanStream(this.nc, this.pool, stream, { start, batch: 1000, timeoutMs: this.timeoutMs }, (msgs) => {
        for (const msg of msgs) this.applyMessage(msg);
      });
    }
    const watcher = await this.kv.watch({ key: '>', resumeFromRevision: loadedUpTo + 1 });
    this.watcher = watcher;
    this.watching = (async () => {
      for await (const entry of watcher) this.apply(entry.key, entry.revision, entry.operation === 'PUT' ? entry.value : null, true);
    })().catch((err: unknown) => this.logger.error({ err }, 'topic catalog watch stopped; topic changes on other nodes are not seen'));
  }

  async stop(): Promise<void> {
    this.watcher?.stop();
    await this.watching;
  }

  get(name: string): TopicEntry | undefined {
    return this.topics.get(name);
  }

  /** The topic, from memory or (on a miss) the bucket; TopicNotFoundError when it is not ready. */
  async lookup(name: string): Promise<TopicEntry> {
    const cached = this.topics.get(name);
    if (cached) return cached;
    const entry = await this.kv.get(topicToken(name));
    if (entry) this.apply(entry.key, entry.revision, entry.operation === 'PUT' ? entry.value : null, false);
    const found = this.topics.get(name);
    if (!found) throw new TopicNotFoundError(name);
    return found;
  }

  list(): TopicEntry[] {
    return [...this.topics.values()].sort((a, b) => (a.meta.name < b.meta.name ? -1 : a.meta.name > b.meta.name ? 1 : 0));
  }

  /** Drops a topic from memory (its stream is gone, or this node is deleting it). */
  invalidate(name: string): void {
    this.topics.delete(name);
  }

  /** Claims the name for a new topic: the one atomic decision when nodes race to create it. */
  async claim(meta: TopicMeta, now: number, attempt = 0): Promise<Claim> {
    const token = topicToken(meta.name);
    try {
      return { revision: await this.kv.create(token, encode(meta)), tookOver: false };
    } catch (err) {
      if (jsErrorCode(err) !== JsErr.WrongLastSequence) throw err;
    }
    const current = await this.kv.get(token);
    if (!current) {
      // Removed in between: try again, a bounded number of times.
      if (attempt >= 3) throw new TopicExistsError(meta.name);
      return this.claim(meta, now, attempt + 1);
    }
    const existing = current.operation === 'PUT' ? decode(current.value) : null;
    const interrupted =
      existing === null || existing.state === 'deleting' || (existing.state === 'creating' && now - existing.since > STALE_CREATION_MS);
    if (!interrupted) throw new TopicExistsError(meta.name);
    try {
      return { revision: await this.kv.update(token, encode(meta), current.revision), tookOver: existing !== null };
    } catch (err) {
      if (jsErrorCode(err) === JsErr.WrongLastSequence) throw new TopicExistsError(meta.name);
      throw err;
    }
  }

  /** Compare-and-set on the record's revision; a lost race is a StorageError naming the topic. */
  async update(meta: TopicMeta, revision: number): Promise<number> {
    try {
      const next = await this.kv.update(topicToken(meta.name), encode(meta), revision);
      this.apply(topicToken(meta.name), next, encode(meta), false);
      return next;
    } catch (err) {
      if (jsErrorCode(err) === JsErr.WrongLastSequence) {
        const doing = meta.state === 'ready' ? 'creating' : 'changing';
        throw new StorageError(`topic "${meta.name}" was changed by another node while this one was ${doing} it`, { cause: err });
      }
      throw err;
    }
  }

  async remove(name: string): Promise<void> {
    this.topics.delete(name);
    await this.kv.delete(topicToken(name));
  }

  private applyMessage(msg: Msg): void {
    const key = msg.subject.slice(`$KV.${this.bucket}.`.length);
    const op = msg.headers?.get('KV-Operation') ?? '';
    this.apply(key, sequenceOf(msg), op === 'DEL' || op === 'PURGE' ? null : msg.data, false);
  }

  private apply(key: string, revision: number, value: Uint8Array | null, fromWatch: boolean): void {
    const meta = value === null ? null : decodeOrNull(value, this.logger, key);
    const name = meta?.name ?? this.nameOfToken(key);
    if (name === undefined) return;
    const current = this.topics.get(name);
    if (current && current.revision >= revision) return;
    if (meta?.state === 'ready') {
      this.topics.set(name, { meta, token: key, revision, roundRobin: current?.roundRobin ?? 0 });
      if (fromWatch && !current) this.events.changed(null);
    } else if (current) {
      this.topics.delete(name);
      if (fromWatch) this.events.changed(name);
    }
  }

  private nameOfToken(token: string): string | undefined {
    for (const [name, entry] of this.topics) if (entry.token === token) return name;
    return undefined;
  }
}

function encode(meta: TopicMeta): Uint8Array {
  return Buffer.from(JSON.stringify(meta));
}

function decode(value: Uint8Array): TopicMeta {
  return JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')) as TopicMeta;
}

function decodeOrNull(value: Uint8Array, logger: Logger, key: string): TopicMeta | null {
  try {
    return decode(value);
  } catch (err) {
    logger.error({ err, key }, 'unreadable topic record in the topics bucket; ignoring it');
    return null;
  }
}
