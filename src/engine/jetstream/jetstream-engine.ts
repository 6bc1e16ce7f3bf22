import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  connect,
  credsAuthenticator,
  DiscardPolicy,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConnectionOptions,
  type JetStreamManager,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import { pino, type Logger } from 'pino';
import { DEFAULT_MAX_READ_BYTES, DEFAULT_MAX_READ_RECORDS, MAX_WAITERS_PER_PARTITION, PRODUCER_BATCH_MEMORY } from '../defaults.js';
import {
  BrookError,
  EngineClosedError,
  InvalidArgumentError,
  MessageTooLargeError,
  OffsetOutOfRangeError,
  PartitionNotFoundError,
  StorageError,
  TopicNotFoundError,
} from '../errors.js';
import { GroupCoordinator } from '../groups/index.js';
import { routeByKey } from '../partitioner.js';
import { assertValidTopicName, isInternalTopic } from '../topic-name.js';
import type {
  AppendOptions,
  AppendResult,
  CommittedOffset,
  Durability,
  Engine,
  EngineCapabilities,
  GroupDescription,
  JoinGroupRequest,
  MemberAssignment,
  MemberFence,
  OffsetCommit,
  PartitionDescription,
  ProduceRecord,
  ProducerIdentity,
  ReadLimits,
  ReadResult,
  RecordPosition,
  StoredRecord,
  TopicConfig,
  TopicConfigInput,
  InternalTopicOptions,
  TopicDescription,
  WaitOptions,
} from '../types.js';
import { AckPipeline, type PublishItem, type PublishOutcome } from './ack-pipeline.js';
import { DistributedGroups } from './distributed-groups.js';
import { pull, PullStatus, ReadConsumerPool, type PullResult } from './consumers.js';
import { KvOffsetStore } from './offset-store.js';
import { JETSTREAM_DEFAULTS, type JetStreamEngineOptions } from './options.js';
import { isStreamNotFound, JsErr, jsErrorCode, toBrookError } from './nats-errors.js';
import { Names, topicToken } from './names.js';
import { PartitionWaiters } from './partition-waiters.js';
import { ProducerSequences } from './producer-sequences.js';
import { decodeRecord, encodeRecord, parseDelivery, recordSize } from './record-codec.js';
import { TombstoneCleaner } from './tombstone-cleaner.js';
import { TopicCatalog, type TopicEntry, type TopicMeta } from './topic-catalog.js';
import { validateTopicConfig } from './topic-config.js';

/** Everything that exists only while the engine is open. */
interface Connected {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly publisher: AckPipeline;
  readonly pool: ReadConsumerPool;
  readonly catalog: TopicCatalog;
  readonly offsets: KvOffsetStore;
  readonly waiters: PartitionWaiters;
  readonly tombstones: TombstoneCleaner;
  readonly groups: DistributedGroups;
}

interface PartitionRef {
  readonly topic: TopicEntry;
  readonly partition: number;
  readonly stream: string;
  /** Where records are published (delete topics) or the prefix of the per-key subjects (compacted). */
  readonly subject: string;
  /** What the stream captures (and waitForData subscribes to). */
  readonly filter: string;
  readonly compacted: boolean;
}

interface StreamWatermarks {
  readonly lowWatermark: number;
  readonly highWatermark: number;
}

interface Appended {
  readonly result: AppendResult;
  /** Offset of each record, in order (consecutive unless another connection wrote in between). */
  readonly offsets: readonly number[];
}

type Settings = typeof JETSTREAM_DEFAULTS & { readonly serverSyncAlways: boolean; readonly replicas: number };

/**
 * The Engine on NATS JetStream: one stream per partition, so a record's offset is its stream
 * sequence minus one, retention and deduplication are the stream's own, and reads are pull
 * consumers. Topic metadata and committed offsets live in KV buckets; consumer groups are served
 * by one node elected with a KV lease, the others forward group calls to it. The mapping, and where it
 * differs from the embedded engine, is in docs/jetstream-engine.md.
 *
 * The engine owns its NATS connection: {@link open} connects, {@link close} drains it.
 *
 * @example
 * ```ts
 * const engine = new JetStreamEngine({ servers: 'nats://127.0.0.1:4222', prefix: 'BROOK' });
 * await engine.open();
 * await engine.createTopic('orders', { partitions: 3 });
 * await engine.produce('orders', [{ key: Buffer.from('u1'), value: Buffer.from('{"total":3}') }]);
 * ```
 */
export class JetStreamEngine implements Engine {
  readonly kind = 'jetstream';
  readonly capabilities: EngineCapabilities;

  private readonly logger: Logger;
  private readonly names: Names;
  private readonly settings: Settings;
  private readonly now: () => number;
  private readonly producers: ProducerSequences;
  private conn: Connected | null = null;
  private maxPayload = 1024 * 1024;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenanceRunning: Promise<void> | null = null;
  private state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  private coordinatorTakeovers = 0;

  constructor(private readonly options: JetStreamEngineOptions = {}) {
    this.names = new Names(options.prefix ?? JETSTREAM_DEFAULTS.prefix);
    const base = options.logger ?? pino({ level: 'silent' });
    this.logger = base.child({ component: 'engine', engine: 'jetstream', prefix: this.names.prefix });
    this.now = options.now ?? Date.now;
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.settings = { ...JETSTREAM_DEFAULTS, ...defined } as Settings;
    for (const name of [
      'replicas',
      'duplicateWindowMs',
      'requestTimeoutMs',
      'ackTimeoutMs',
      'maxInFlightPublishes',
      'maxBatchBytes',
      'maxIdleReadConsumers',
      'readConsumerIdleMs',
      'maxTopics',
      'maxProducers',
      'maintenanceIntervalMs',
      'coordinatorLeaseMs',
      'maxInFlightGroupCalls',
    ] as const) {
      const value = this.settings[name];
      if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
    }
    const delay = this.settings.coordinatorTakeoverDelayMs;
    if (!Number.isSafeInteger(delay) || delay < 0) {
      throw new InvalidArgumentError(`coordinatorTakeoverDelayMs must be a non-negative integer, got ${delay}`);
    }
    const durabilityModes: readonly Durability[] = this.settings.serverSyncAlways ? ['fsync', 'os'] : ['os'];
    // Compaction: max_msgs_per_subject on a subject per key, plus tombstone expiry (see docs).
    this.capabilities = { compaction: true, timeIndex: true, durabilityModes };
    this.producers = new ProducerSequences(this.settings.maxProducers, PRODUCER_BATCH_MEMORY);
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────

  /**
   * Connects, creates the KV buckets if missing, loads topics, and joins the election of the
   * group coordinator (serving at once when no other node holds the lease).
   */
  async open(): Promise<void> {
    if (this.state !== 'new') throw new InvalidArgumentError('an engine can be opened once');
    this.state = 'opening';
    const s = this.settings;
    let nc: NatsConnection | undefined;
    try {
      nc = await connect(await this.connectionOptions());
      this.maxPayload = nc.info?.max_payload ?? this.maxPayload;
      const jsm = await nc.jetstreamManager({ timeout: s.requestTimeoutMs });
      const js = nc.jetstream({ timeout: s.requestTimeoutMs });
      const bucketOptions = { history: 1, replicas: s.replicas, storage: StorageType.File, timeout: s.requestTimeoutMs };
      const topicsKv = await js.views.kv(this.names.topicsBucket, { ...bucketOptions, description: 'Brook topics' });
      const offsetsKv = await js.views.kv(this.names.offsetsBucket, { ...bucketOptions, description: 'Brook committed offsets' });
      const publisher = new AckPipeline(nc, { maxInFlight: s.maxInFlightPublishes, ackTimeoutMs: s.ackTimeoutMs });
      publisher.start();
      const pool = new ReadConsumerPool(jsm, this.logger, {
        max: s.maxIdleReadConsumers,
        maxIdleMs: s.readConsumerIdleMs,
        inactiveThresholdMs: Math.max(s.consumerInactiveThresholdMs, s.readConsumerIdleMs * 2),
      });
      const catalog = new TopicCatalog(nc, jsm, topicsKv, this.names.topicsBucket, pool, this.logger, s.requestTimeoutMs, {
        changed: (deleted) => this.onRemoteTopicChange(deleted),
      });
      const topicExists = (topic: string): boolean => catalog.get(topic) !== undefined;
      const offsets = new KvOffsetStore(nc, jsm, offsetsKv, this.names, pool, this.logger, s.requestTimeoutMs, topicExists);
      // Its max_age is the lease: JetStream forgets a leader that stops renewing.
      const leaseKv = await js.views.kv(this.names.leaseBucket, {
        history: 1,
        replicas: s.replicas,
        storage: StorageType.File,
        ttl: s.coordinatorLeaseMs,
        timeout: Math.max(1, Math.min(s.requestTimeoutMs, Math.floor(s.coordinatorLeaseMs / 3))),
        description: 'Brook consumer-group coordinator lease',
      });
      const groups = new DistributedGroups({
        nc,
        leaseKv,
        nodeId: randomUUID(),
        leaseMs: s.coordinatorLeaseMs,
        takeoverDelayMs: s.coordinatorTakeoverDelayMs,
        now: this.now,
        onTakeover: () => this.coordinatorTakeovers++,
        subject: this.names.groupCallsSubject,
        requestTimeoutMs: s.requestTimeoutMs,
        maxInFlightCalls: s.maxInFlightGroupCalls,
        logger: this.logger,
        newCoordinator: () =>
          new GroupCoordinator({
            offsetStore: offsets,
            partitionCount: async (topic) => (await this.topicEntry(topic)).meta.config.partitions,
            now: this.now,
          }),
      });
      const highWatermark = async (stream: string): Promise<number> => (await this.streamWatermarksByName(stream)).highWatermark;
      const waiters = new PartitionWaiters(nc, this.logger, MAX_WAITERS_PER_PARTITION, highWatermark);
      const tombstones = new TombstoneCleaner(nc, jsm, pool, s.maxPendingTombstones, s.requestTimeoutMs);
      this.conn = { nc, jsm, publisher, pool, catalog, offsets, waiters, tombstones, groups };
      await catalog.load();
      await groups.open();
      if (this.state !== 'opening') throw new EngineClosedError();
      this.state = 'open';
    } catch (err) {
      const conn = this.conn;
      this.conn = null;
      this.state = 'closed';
      conn?.publisher.close();
      await conn?.catalog.stop();
      await conn?.pool.close();
      await nc?.close();
      throw toBrookError(err, 'opening the JetStream engine', false);
    }
    this.maintenanceTimer = setInterval(() => void this.runMaintenance(), s.maintenanceIntervalMs);
    this.maintenanceTimer.unref();
    void this.conn.nc.closed().then((err) => {
      if (this.state === 'open') this.logger.error({ err }, 'NATS connection closed unexpectedly; the engine can no longer serve');
    });
    this.logger.info({ servers: s.servers, topics: this.conn.catalog.size, maxPayload: this.maxPayload }, 'jetstream engine open');
  }

  /**
   * How many times this node took the group coordinator over from an earlier one and began
   * serving joins (after `coordinatorTakeoverDelayMs`); for `brook_group_coordinator_takeovers_total`.
   */
  get groupCoordinatorTakeovers(): number {
    return this.coordinatorTakeovers;
  }

  /** Whether this node holds the group-coordinator lease and serves consumer groups now. */
  get isGroupCoordinator(): boolean {
    return this.conn?.groups.isCoordinator ?? false;
  }

  /**
   * The open NATS connection with the prefix and replica count, for components that keep their
   * own objects on the same JetStream (the native queue backend, src/queues/jetstream/; channels
   * on several nodes, src/channels/cluster.ts). They must stop using it before `close()`, which
   * drains it, and never close it themselves.
   */
  natsAccess(): { readonly nc: NatsConnection; readonly prefix: string; readonly replicas: number; readonly requestTimeoutMs: number } {
    const { nc } = this.connected();
    return { nc, prefix: this.names.prefix, replicas: this.settings.replicas, requestTimeoutMs: this.settings.requestTimeoutMs };
  }

  /** Waits for appends in flight, deletes this node's read consumers and drains the connection. */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'new') {
      this.state = 'closed';
      return;
    }
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    clearInterval(this.maintenanceTimer);
    const conn = this.conn;
    if (!wasOpen || !conn) return;
    await this.maintenanceRunning;
    conn.waiters.close();
    await conn.groups.close();
    await conn.publisher.idle();
    conn.publisher.close();
    await conn.catalog.stop();
    await conn.pool.close();
    try {
      await conn.nc.drain();
    } catch (err) {
      this.logger.warn({ err }, 'NATS connection did not drain cleanly');
    }
    this.conn = null;
    this.logger.info('jetstream engine closed');
  }

  /**
   * Deletes every stream and bucket under this engine's prefix — all topics, records and
   * committed offsets, and what other parts of Brook keep under it (channel streams, the
   * presence bucket, native queues and their buckets) — then closes the engine. For tests and
   * for tearing an installation down. A prefix holds no `_` (names.ts), so `<prefix>_` and
   * `KV_<prefix>_` name this prefix's streams and no other's.
   */
  async destroy(): Promise<void> {
    const { jsm } = this.connected();
    const prefix = this.names.prefix;
    const streams: string[] = [];
    for await (const info of jsm.streams.list()) {
      const name = info.config.name;
      if (name.startsWith(`${prefix}_`) || name.startsWith(`KV_${prefix}_`)) streams.push(name);
    }
    await this.close();
    // Deleted with a connection of their own: close() has drained this engine's.
    const nc = await connect(await this.connectionOptions());
    try {
      const admin = await nc.jetstreamManager();
      for (const name of new Set([...streams, `KV_${this.names.topicsBucket}`, `KV_${this.names.offsetsBucket}`, `KV_${this.names.leaseBucket}`])) {
        try {
          await admin.streams.delete(name);
        } catch (err) {
          if (!isStreamNotFound(err)) throw toBrookError(err, `deleting stream ${name}`, false);
        }
      }
    } finally {
      await nc.close();
    }
  }

  /** Removes expired tombstones of compacted topics now (also runs on a timer). */
  async runMaintenance(): Promise<void> {
    if (this.state !== 'open' || this.maintenanceRunning) return this.maintenanceRunning ?? undefined;
    const conn = this.connected();
    const run = async (): Promise<void> => {
      for (const topic of conn.catalog.list()) {
        if (topic.meta.config.cleanupPolicy !== 'compact') continue;
        for (let p = 0; p < topic.meta.config.partitions && this.state === 'open'; p++) {
          const stream = this.names.stream(topic.token, p);
          try {
            const purged = await conn.tombstones.clean(stream, topic.meta.config.deleteRetentionMs, this.now());
            if (purged > 0) this.logger.debug({ topic: topic.meta.name, partition: p, purged }, 'expired tombstones removed');
          } catch (err) {
            if (isStreamNotFound(err)) continue; // deleted meanwhile
            this.logger.error({ err, topic: topic.meta.name, partition: p }, 'tombstone cleaning failed; will retry next interval');
          }
        }
      }
    };
    this.maintenanceRunning = run().finally(() => {
      this.maintenanceRunning = null;
    });
    return this.maintenanceRunning;
  }

  // ── topics ────────────────────────────────────────────────────────────────────────────────

  async createTopic(name: string, input: TopicConfigInput = {}, options: InternalTopicOptions = {}): Promise<TopicDescription> {
    const conn = this.connected();
    assertValidTopicName(name);
    if (isInternalTopic(name) && options.internal !== true) {
      throw new InvalidArgumentError(`topic names starting with "__" are reserved for Brook`);
    }
    const config = validateTopicConfig(input, this.capabilities.durabilityModes);
    if (conn.catalog.size >= this.settings.maxTopics) {
      throw new InvalidArgumentError(`too many topics (limit ${this.settings.maxTopics})`);
    }
    const meta: TopicMeta = { name, id: randomUUID(), config, state: 'creating', since: this.now() };
    const token = topicToken(name);
    try {
      const claim = await conn.catalog.claim(meta, this.now());
      try {
        if (claim.tookOver) {
          this.logger.warn({ topic: name }, 'taking over an interrupted creation or deletion of this topic');
          await this.deleteStreams(token, UNKNOWN_PARTITIONS);
        }
        await conn.offsets.purgeTopic(name);
        await mapLimited(config.partitions, this.settings.adminConcurrency, (p) => this.createStream(token, p, name, config));
        await conn.catalog.update({ ...meta, state: 'ready', since: this.now() }, claim.revision);
      } catch (err) {
        await this.rollBackCreation(name, token, config.partitions);
        throw err;
      }
    } catch (err) {
      throw this.wrap(err, `creating topic "${name}"`);
    }
    this.logger.info({ topic: name, partitions: config.partitions }, 'topic created');
    await conn.groups.topicsChanged();
    return {
      name,
      config,
      partitions: Array.from({ length: config.partitions }, (_, p) => ({ partition: p, lowWatermark: 0, highWatermark: 0 })),
    };
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    const topic = await this.topicEntry(name);
    const partitions = await mapLimited(topic.meta.config.partitions, this.settings.adminConcurrency, async (p) => ({
      partition: p,
      ...(await this.streamWatermarks(this.ref(topic, p))),
    }));
    return { name: topic.meta.name, config: topic.meta.config, partitions };
  }

  async listTopics(): Promise<TopicDescription[]> {
    const conn = this.connected();
    const states = new Map<string, StreamWatermarks>();
    try {
      for await (const info of conn.jsm.streams.list(this.names.allSubjects)) states.set(info.config.name, watermarksOf(info.state));
    } catch (err) {
      throw this.wrap(err, 'listing topics');
    }
    return conn.catalog.list().map((topic) => ({
      name: topic.meta.name,
      config: topic.meta.config,
      partitions: Array.from({ length: topic.meta.config.partitions }, (_, p) => ({
        partition: p,
        ...(states.get(this.names.stream(topic.token, p)) ?? { lowWatermark: 0, highWatermark: 0 }),
      })),
    }));
  }

  async deleteTopic(name: string, options: InternalTopicOptions = {}): Promise<void> {
    const conn = this.connected();
    if (isInternalTopic(name) && options.internal !== true) throw new InvalidArgumentError(`internal topic "${name}" cannot be deleted`);
    const topic = await this.topicEntry(name);
    try {
      try {
        await conn.catalog.update({ ...topic.meta, state: 'deleting', since: this.now() }, topic.revision);
      } catch (err) {
        if (err instanceof StorageError) throw new TopicNotFoundError(name); // deleted or replaced by another node
        throw err;
      }
      conn.catalog.invalidate(name);
      for (let p = 0; p < topic.meta.config.partitions; p++) {
        const stream = this.names.stream(topic.token, p);
        conn.waiters.cancel(stream);
        conn.pool.forgetStream(stream);
        conn.tombstones.forget(stream);
      }
      this.producers.forgetTopic(topic.meta.id);
      await this.deleteStreams(topic.token, topic.meta.config.partitions);
      await conn.offsets.purgeTopic(name);
      await conn.catalog.remove(name);
    } catch (err) {
      throw this.wrap(err, `deleting topic "${name}"`);
    }
    await conn.groups.topicDeleted(name);
    this.logger.info({ topic: name }, 'topic deleted');
  }

  // ── records ───────────────────────────────────────────────────────────────────────────────

  async append(topic: string, partition: number, records: readonly ProduceRecord[], options?: AppendOptions): Promise<AppendResult> {
    const ref = this.ref(await this.topicEntry(topic), partition);
    return (await this.appendTo(ref, records, options?.producer)).result;
  }

  async produce(topic: string, records: readonly ProduceRecord[]): Promise<RecordPosition[]> {
    const entry = await this.topicEntry(topic);
    if (records.length === 0) throw new InvalidArgumentError('a batch needs at least one record');
    const n = entry.meta.config.partitions;
    const { targets, byPartition } = routeByKey(records, n, entry.roundRobin++ % n);
    const offsets = new Map<number, readonly number[]>();
    await Promise.all(
      [...byPartition].map(async ([p, list]) => {
        offsets.set(p, (await this.appendTo(this.ref(entry, p), list, undefined)).offsets);
      }),
    );
    const next = new Map<number, number>();
    return targets.map((p) => {
      const i = next.get(p) ?? 0;
      next.set(p, i + 1);
      return { partition: p, offset: offsets.get(p)![i]! };
    });
  }

  async read(topic: string, partition: number, offset: number, limits: ReadLimits = {}): Promise<ReadResult> {
    const ref = this.ref(await this.topicEntry(topic), partition);
    const maxRecords = limits.maxRecords ?? DEFAULT_MAX_READ_RECORDS;
    const maxBytes = limits.maxBytes ?? DEFAULT_MAX_READ_BYTES;
    if (!Number.isSafeInteger(maxRecords) || maxRecords < 1 || !Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new InvalidArgumentError('maxRecords and maxBytes must be positive integers');
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      const w = await this.streamWatermarks(ref);
      throw new OffsetOutOfRangeError(offset, w.lowWatermark, w.highWatermark);
    }
    const { pool } = this.connected();
    // The stream state and the records are fetched at once; the rare case where they disagree
    // (nothing delivered below the high watermark) is settled by one more pull.
    const watermarks = this.streamWatermarks(ref);
    // Awaited below on every path; this only keeps an early rejection from counting as unhandled.
    watermarks.catch(() => undefined);
    let consumer: string | null = null;
    try {
      const first = await this.pullFrom(ref, offset, maxRecords, maxBytes);
      consumer = first.consumer;
      const state = await watermarks;
      const lowWatermark = state.lowWatermark;
      let highWatermark = state.highWatermark;
      let records = this.decode(first.pulled);
      if (records.length === 0 && offset < highWatermark && offset >= lowWatermark) {
        records = this.decode(await this.pullOnce(ref.stream, consumer, maxRecords, maxBytes));
      }
      const head = records[0];
      const last = records.at(-1);
      if (last) highWatermark = Math.max(highWatermark, last.offset + 1);
      // Offsets of delete topics are contiguous: a first record past `offset` means retention
      // removed `offset` meanwhile. A first record at `offset` is valid even if retention has moved on since.
      const retentionGap = head !== undefined && head.offset > offset && !ref.compacted;
      if ((offset < lowWatermark && head?.offset !== offset) || offset > highWatermark || retentionGap) {
        throw new OffsetOutOfRangeError(offset, retentionGap ? Math.max(lowWatermark, head.offset) : lowWatermark, highWatermark);
      }
      let nextOffset = last ? last.offset + 1 : offset;
      if (!last && offset < highWatermark) {
        if (!ref.compacted) {
          // Either retention removed it between the state and the pull, or it was stored an
          // instant ago and not yet delivered to the pull (a reader right at the tail): only the
          // first is out of range; the second reads nothing this time and the caller reads again.
          const now = await this.streamWatermarks(ref);
          if (offset < now.lowWatermark) throw new OffsetOutOfRangeError(offset, now.lowWatermark, now.highWatermark);
        } else {
          nextOffset = highWatermark; // everything from `offset` to the high watermark was compacted away
        }
      }
      pool.release(ref.stream, last ? last.offset + 2 : offset + 1, consumer);
      consumer = null;
      return { records, nextOffset, lowWatermark, highWatermark };
    } catch (err) {
      if (consumer !== null) pool.delete(ref.stream, consumer);
      await watermarks; // a missing stream is reported as the topic not existing
      throw this.wrap(err, `reading ${topic}/${partition}`, topic);
    }
  }

  async waitForData(topic: string, partition: number, offset: number, options: WaitOptions): Promise<boolean> {
    const ref = this.ref(await this.topicEntry(topic), partition);
    try {
      return await this.connected().waiters.wait(ref.stream, ref.filter, offset, options);
    } catch (err) {
      throw this.wrap(err, `waiting on ${topic}/${partition}`, topic);
    }
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    if (!Number.isFinite(timestamp)) throw new InvalidArgumentError('timestamp must be a number of milliseconds');
    const ref = this.ref(await this.topicEntry(topic), partition);
    const conn = this.connected();
    const w = await this.streamWatermarks(ref);
    if (w.lowWatermark === w.highWatermark || timestamp > MAX_DATE_MS) return w.highWatermark;
    if (timestamp <= 0) return w.lowWatermark;
    try {
      const consumer = await conn.pool.create(ref.stream, { kind: 'time', time: new Date(timestamp) }, true);
      try {
        const result = await pull(conn.nc, ref.stream, consumer, { batch: 1, noWait: true, timeoutMs: this.settings.requestTimeoutMs });
        const msg = result.messages[0];
        const delivery = msg ? parseDelivery(msg.reply) : null;
        return delivery ? delivery.streamSequence - 1 : (await this.streamWatermarks(ref)).highWatermark;
      } finally {
        conn.pool.delete(ref.stream, consumer);
      }
    } catch (err) {
      throw this.wrap(err, `looking up a timestamp in ${topic}/${partition}`, topic);
    }
  }

  async watermarks(topic: string, partition: number): Promise<PartitionDescription> {
    const ref = this.ref(await this.topicEntry(topic), partition);
    return { partition, ...(await this.streamWatermarks(ref)) };
  }

  async truncateBefore(topic: string, partition: number, offset: number): Promise<number> {
    const ref = this.ref(await this.topicEntry(topic), partition);
    const w = await this.streamWatermarks(ref);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > w.highWatermark) {
      throw new OffsetOutOfRangeError(offset, w.lowWatermark, w.highWatermark);
    }
    if (offset <= w.lowWatermark) return w.lowWatermark;
    try {
      // Offset = sequence − 1, so purging below sequence `offset + 1` drops exactly offsets < offset.
      await this.connected().jsm.streams.purge(ref.stream, { seq: offset + 1 });
    } catch (err) {
      throw this.wrap(err, `truncating ${topic}/${partition} before ${offset}`, topic);
    }
    return (await this.streamWatermarks(ref)).lowWatermark;
  }

  // ── consumer groups ───────────────────────────────────────────────────────────────────────

  async commitOffsets(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void> {
    const conn = this.connected();
    for (const c of commits) this.ref(await this.topicEntry(c.topic), c.partition);
    return conn.groups.commit(group, commits, fence);
  }

  async fetchOffsets(group: string, topic?: string): Promise<CommittedOffset[]> {
    return this.connected().groups.fetch(group, topic);
  }

  async joinGroup(request: JoinGroupRequest): Promise<MemberAssignment> {
    return this.connected().groups.join(request);
  }

  async heartbeat(group: string, memberId: string): Promise<MemberAssignment> {
    return this.connected().groups.heartbeat(group, memberId);
  }

  async leaveGroup(group: string, memberId: string): Promise<void> {
    return this.connected().groups.leave(group, memberId);
  }

  async describeGroup(group: string): Promise<GroupDescription> {
    return this.connected().groups.describe(group);
  }

  async listGroups(): Promise<string[]> {
    return this.connected().groups.list();
  }

  // ── internals: appends ────────────────────────────────────────────────────────────────────

  private async appendTo(ref: PartitionRef, records: readonly ProduceRecord[], producer: ProducerIdentity | undefined): Promise<Appended> {
    const { publisher } = this.connected();
    if (records.length === 0) throw new InvalidArgumentError('a batch needs at least one record');
    const config = ref.topic.meta.config;
    let producerKey: string | null = null;
    if (producer) {
      if (!Number.isSafeInteger(producer.sequence) || producer.sequence < 0) {
        throw new InvalidArgumentError('producer sequence must be a non-negative integer');
      }
      if (producer.id.length === 0 || Buffer.byteLength(producer.id) > 64) throw new InvalidArgumentError('producer id must be 1-64 bytes');
      producerKey = ProducerSequences.key(ref.topic.meta.id, ref.partition, producer.id);
    }
    const items: PublishItem[] = new Array<PublishItem>(records.length);
    let total = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const size = recordSize(record);
      if (size > config.maxRecordBytes) throw new MessageTooLargeError('record', size, config.maxRecordBytes);
      if (ref.compacted && record.key == null) {
        throw new InvalidArgumentError(`records of compacted topic "${ref.topic.meta.name}" need a key`);
      }
      const msgId = producer ? `${encodeURIComponent(producer.id)}:${ref.partition}:${producer.sequence + i}` : null;
      const encoded = encodeRecord(record, msgId);
      if (encoded.wireBytes > this.maxPayload) throw new MessageTooLargeError('record', encoded.wireBytes, this.maxPayload);
      total += encoded.wireBytes;
      const subject = ref.compacted ? this.names.keySubject(ref.topic.token, ref.partition, record.key!) : ref.subject;
      items[i] = { subject, data: encoded.data, headers: encoded.headers };
    }
    if (total > this.settings.maxBatchBytes) throw new MessageTooLargeError('batch', total, this.settings.maxBatchBytes);

    if (producer && producerKey) {
      const check = this.producers.check(producerKey, producer.id, producer.sequence, records.length);
      if (check.kind === 'duplicate') {
        const original = await check.result;
        return { result: { ...original, duplicate: true }, offsets: range(original.baseOffset, original.count) };
      }
    }
    const appended = publisher.publish(items).then((outcomes) => this.settleAppend(ref, outcomes));
    if (producer && producerKey) {
      const key = producerKey;
      const result = appended.then((a) => a.result);
      // The caller gets the failure through `appended`; a retry that finds this batch in the
      // producer memory is answered from `result`, and a failed batch is forgotten first.
      result.catch(() => this.producers.forget(key));
      this.producers.record(key, producer.sequence, records.length, result);
    }
    return appended;
  }

  private async settleAppend(ref: PartitionRef, outcomes: readonly PublishOutcome[]): Promise<Appended> {
    const offsets: number[] = [];
    let duplicates = 0;
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i]!;
      if (!o.ok) throw await this.appendFailure(ref, outcomes, i);
      offsets.push(o.seq - 1);
      if (o.duplicate) duplicates++;
    }
    const baseOffset = offsets[0]!;
    if (offsets[offsets.length - 1] !== baseOffset + offsets.length - 1) {
      this.logger.warn(
        { topic: ref.topic.meta.name, partition: ref.partition, baseOffset, count: offsets.length },
        'batch stored with gaps: another connection wrote to the partition in between, or part of it was a retry',
      );
    }
    return {
      result: {
        partition: ref.partition,
        baseOffset,
        count: offsets.length,
        timestamp: this.now(),
        duplicate: duplicates === offsets.length,
      },
      offsets,
    };
  }

  private async appendFailure(ref: PartitionRef, outcomes: readonly PublishOutcome[], index: number): Promise<BrookError> {
    const failed = outcomes[index]!;
    if (failed.ok) throw new Error('unreachable');
    const stored = outcomes.filter((o) => o.ok).length;
    const where = `${ref.topic.meta.name}/${ref.partition}`;
    if (failed.kind === 'no-stream' && stored === 0) {
      // No responders: nobody listens on the subject. Either the stream is gone, or, on a
      // cluster, it is between leaders: only a stream's leader subscribes to its subjects
      // (nats-server stream.go setLeader). An election must stay a retryable StorageError, not
      // become TOPIC_NOT_FOUND (issue #7), so the stream itself is asked.
      try {
        await this.connected().jsm.streams.info(ref.stream);
      } catch (err) {
        if (isStreamNotFound(err)) {
          this.connected().catalog.invalidate(ref.topic.meta.name);
          return new TopicNotFoundError(ref.topic.meta.name);
        }
        // Leaderless streams do not answer info requests either (a timeout): still retryable.
        return new StorageError(`appending to ${where} failed: ${failed.message}; nothing was stored`, { cause: err });
      }
      const message = `appending to ${where} failed: its stream has no leader right now (a cluster election); nothing was stored`;
      return new StorageError(message, { cause: failed.cause });
    }
    if (failed.kind === 'closed' && this.state === 'closed' && stored === 0) return new EngineClosedError();
    const partial = outcomes.length > 1 ? ` (record ${index} of ${outcomes.length}; ${stored} of the batch's records were stored)` : '';
    return new StorageError(`appending to ${where} failed: ${failed.message}${partial}`, { cause: failed.cause });
  }

  // ── internals: reads ──────────────────────────────────────────────────────────────────────

  /** Pulls from a pooled consumer positioned at `offset` (or a new one), retrying once if it vanished. */
  private async pullFrom(
    ref: PartitionRef,
    offset: number,
    maxRecords: number,
    maxBytes: number,
  ): Promise<{ consumer: string; pulled: PullResult }> {
    const { pool } = this.connected();
    for (let attempt = 0; ; attempt++) {
      const { name, reused } = await pool.acquire(ref.stream, offset + 1);
      let pulled: PullResult;
      try {
        pulled = await this.pullOnce(ref.stream, name, maxRecords, maxBytes);
      } catch (err) {
        pool.delete(ref.stream, name);
        throw err;
      }
      const gone = pulled.messages.length === 0 && (pulled.status === PullStatus.NoResponders || pulled.status === PullStatus.Conflict);
      if (!gone) return { consumer: name, pulled };
      pool.delete(ref.stream, name);
      // A pooled consumer the server expired or deleted: start a fresh one, once.
      if (!reused || attempt > 0) throw new StorageError(`reading ${ref.stream}: ${pulled.status} ${pulled.description}`);
    }
  }

  private async pullOnce(stream: string, consumer: string, maxRecords: number, maxBytes: number): Promise<PullResult> {
    const { nc } = this.connected();
    const timeoutMs = this.settings.requestTimeoutMs;
    const result = await pull(nc, stream, consumer, { batch: maxRecords, maxBytes, noWait: true, timeoutMs });
    if (result.messages.length === 0 && result.status === PullStatus.Conflict && /max ?bytes/i.test(result.description)) {
      // maxBytes is a soft bound: one record is returned even when it alone is larger.
      return pull(nc, stream, consumer, { batch: 1, noWait: true, timeoutMs });
    }
    return result;
  }

  private decode(pulled: PullResult): StoredRecord[] {
    return pulled.messages.map((msg) => {
      const delivery = parseDelivery(msg.reply);
      if (!delivery) throw new StorageError(`unexpected delivery subject ${JSON.stringify(msg.reply)} from JetStream`);
      return decodeRecord(msg, delivery);
    });
  }

  private async streamWatermarks(ref: PartitionRef): Promise<StreamWatermarks> {
    try {
      return await this.streamWatermarksByName(ref.stream);
    } catch (err) {
      throw this.wrap(err, `reading the state of ${ref.topic.meta.name}/${ref.partition}`, ref.topic.meta.name);
    }
  }

  private async streamWatermarksByName(stream: string): Promise<StreamWatermarks> {
    const info = await this.connected().jsm.streams.info(stream);
    return watermarksOf(info.state);
  }

  // ── internals: topics and streams ─────────────────────────────────────────────────────────

  private async topicEntry(name: string): Promise<TopicEntry> {
    const conn = this.connected();
    const cached = conn.catalog.get(name);
    if (cached) return cached;
    try {
      assertValidTopicName(name);
    } catch {
      // No topic can have this name, so it does not exist (and it is no KV key to look up).
      throw new TopicNotFoundError(name);
    }
    try {
      return await conn.catalog.lookup(name);
    } catch (err) {
      throw this.wrap(err, `looking up topic "${name}"`);
    }
  }

  private ref(topic: TopicEntry, partition: number): PartitionRef {
    if (!Number.isInteger(partition) || partition < 0 || partition >= topic.meta.config.partitions) {
      throw new PartitionNotFoundError(topic.meta.name, partition);
    }
    const compacted = topic.meta.config.cleanupPolicy === 'compact';
    return {
      topic,
      partition,
      stream: this.names.stream(topic.token, partition),
      subject: this.names.subject(topic.token, partition),
      filter: this.names.streamSubject(topic.token, partition, compacted),
      compacted,
    };
  }

  private async createStream(token: string, partition: number, topic: string, config: TopicConfig): Promise<void> {
    const { jsm } = this.connected();
    const compacted = config.cleanupPolicy === 'compact';
    const duplicateWindowMs = Math.min(this.settings.duplicateWindowMs, config.retentionMs ?? Number.MAX_SAFE_INTEGER);
    const stream: Partial<StreamConfig> = {
      name: this.names.stream(token, partition),
      description: `Brook topic ${topic}, partition ${partition}`,
      subjects: [this.names.streamSubject(token, partition, compacted)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: this.settings.replicas,
      discard: DiscardPolicy.Old,
      max_age: config.retentionMs === null ? 0 : nanos(config.retentionMs),
      max_bytes: config.retentionBytes ?? -1,
      max_msgs: -1,
      max_msgs_per_subject: compacted ? 1 : -1,
      duplicate_window: nanos(duplicateWindowMs),
    };
    let info;
    try {
      info = await jsm.streams.add(stream);
    } catch (err) {
      if (jsErrorCode(err) !== JsErr.StreamNameInUse) throw err;
      // Left over from an interrupted creation or deletion of this name, which we now own.
      await jsm.streams.delete(stream.name!);
      info = await jsm.streams.add(stream);
    }
    if (info.state.last_seq > 0) {
      // The same configuration left over with records in it: start empty.
      await jsm.streams.delete(stream.name!);
      await jsm.streams.add(stream);
    }
  }

  /** Deletes the partition streams of a topic token; missing ones are fine. */
  private async deleteStreams(token: string, partitions: number): Promise<void> {
    const { jsm } = this.connected();
    if (partitions === UNKNOWN_PARTITIONS) {
      // Unknown partition count (an interrupted operation): delete what the server lists.
      const names: string[] = [];
      for await (const info of jsm.streams.list(`${this.names.prefix}.${token}.>`)) names.push(info.config.name);
      await mapLimited(names.length, this.settings.adminConcurrency, (i) => deleteStream(jsm, names[i]!));
      return;
    }
    await mapLimited(partitions, this.settings.adminConcurrency, (p) => deleteStream(jsm, this.names.stream(token, p)));
  }

  private async rollBackCreation(name: string, token: string, partitions: number): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    try {
      await this.deleteStreams(token, partitions);
      await conn.catalog.remove(name);
    } catch (err) {
      // The record stays in `creating`; the next createTopic of this name takes it over.
      this.logger.error({ err, topic: name }, 'could not roll back a failed topic creation');
    }
  }

  private onRemoteTopicChange(deletedTopic: string | null): void {
    const conn = this.conn;
    if (!conn || this.state !== 'open') return;
    const update = deletedTopic === null ? conn.groups.topicsChanged() : conn.groups.topicDeleted(deletedTopic);
    update.catch((err: unknown) => {
      if (err instanceof EngineClosedError) return; // closing: the groups go away with the engine
      this.logger.error({ err, deletedTopic }, 'could not apply a topic change to consumer groups');
    });
  }

  private async connectionOptions(): Promise<ConnectionOptions> {
    const s = this.settings;
    const servers = typeof s.servers === 'string' ? s.servers : [...s.servers];
    const options: ConnectionOptions = { servers, name: s.name, maxReconnectAttempts: -1, timeout: s.requestTimeoutMs };
    if (this.options.user !== undefined) options.user = this.options.user;
    if (this.options.pass !== undefined) options.pass = this.options.pass;
    if (this.options.token !== undefined) options.token = this.options.token;
    if (this.options.credsFile !== undefined) {
      let creds: Uint8Array;
      try {
        creds = await readFile(this.options.credsFile);
      } catch (err) {
        throw new InvalidArgumentError(`cannot read the NATS credentials file ${this.options.credsFile}: ${(err as Error).message}`, { cause: err });
      }
      options.authenticator = credsAuthenticator(creds);
    }
    if (this.options.tls !== undefined) {
      const { caFile, certFile, keyFile } = this.options.tls;
      if ((certFile === undefined) !== (keyFile === undefined)) {
        throw new InvalidArgumentError('a NATS client certificate needs both certFile and keyFile');
      }
      options.tls = {
        ...(caFile === undefined ? {} : { caFile }),
        ...(certFile === undefined ? {} : { certFile }),
        ...(keyFile === undefined ? {} : { keyFile }),
      };
    }
    return options;
  }

  private connected(): Connected {
    if (this.state !== 'open' || !this.conn) throw new EngineClosedError();
    return this.conn;
  }

  /** Maps a failure to a Brook error; with `topic`, a missing stream means the topic is gone. */
  private wrap(err: unknown, what: string, topic?: string): BrookError {
    if (topic !== undefined && isStreamNotFound(err)) {
      this.conn?.catalog.invalidate(topic);
      return new TopicNotFoundError(topic);
    }
    return toBrookError(err, what, this.state === 'closed');
  }
}

/** Sentinel for {@link JetStreamEngine.deleteStreams}: the partition count is not known. */
const UNKNOWN_PARTITIONS = -1;
/** Largest time `Date` can represent. */
const MAX_DATE_MS = 8.64e15;

function watermarksOf(state: { first_seq: number; last_seq: number; messages: number }): StreamWatermarks {
  const highWatermark = state.last_seq;
  const lowWatermark = state.messages === 0 ? highWatermark : Math.max(0, state.first_seq - 1);
  return { lowWatermark, highWatermark };
}

async function deleteStream(jsm: JetStreamManager, name: string): Promise<void> {
  try {
    await jsm.streams.delete(name);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

/** Runs `fn(0..n-1)` with at most `limit` at a time, results in order. */
async function mapLimited<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}
