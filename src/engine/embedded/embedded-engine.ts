import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import {
  DEFAULT_MAX_READ_BYTES,
  DEFAULT_MAX_READ_RECORDS,
  MAX_PENDING_BYTES_PER_PARTITION,
  MAX_PRODUCERS_PER_PARTITION,
  MAX_WAITERS_PER_PARTITION,
  PRODUCER_BATCH_MEMORY,
  TAIL_CACHE_BYTES,
  TAIL_CACHE_PER_PARTITION_BYTES,
} from '../defaults.js';
import {
  EngineClosedError,
  InvalidArgumentError,
  PartitionNotFoundError,
  StorageError,
  TopicExistsError,
  TopicNotFoundError,
} from '../errors.js';
import { GroupCoordinator } from '../groups/index.js';
import { routeByKey } from '../partitioner.js';
import { assertValidTopicName, isInternalTopic } from '../topic-name.js';
import type {
  AppendOptions,
  AppendResult,
  CommittedOffset,
  Engine,
  EngineCapabilities,
  GroupDescription,
  JoinGroupRequest,
  MemberAssignment,
  MemberFence,
  OffsetCommit,
  PartitionDescription,
  ProduceRecord,
  ReadLimits,
  StoredReadLimits,
  ReadResult,
  StoredBatchInfo,
  StoredBatchRead,
  RecordPosition,
  TopicConfig,
  TopicConfigInput,
  InternalTopicOptions,
  TopicDescription,
  WaitOptions,
} from '../types.js';
import { checkClientBatch, ClientBatchError } from './batch-codec.js';
import { FdCache } from './fd-cache.js';
import { IndexCache } from './index-cache.js';
import { InternalTopicOffsetStore, OFFSETS_TOPIC } from './offset-store.js';
import { PartitionLog } from './partition-log.js';
import { TailCacheBudget } from './tail-cache.js';
import { validateTopicConfig } from '../topic-config.js';
import { DataDirLock } from './data-dir-lock.js';

export interface EmbeddedEngineOptions {
  /** Directory holding all data; created if missing. */
  readonly dataDir: string;
  readonly logger?: Logger;
  /** Injectable clock (ms since epoch). @defaultValue Date.now */
  readonly now?: () => number;
  /** How often retention and compaction run. @defaultValue 30_000 */
  readonly maintenanceIntervalMs?: number;
  /** Open read handles to sealed segments, across all partitions. @defaultValue 256 */
  readonly maxOpenFiles?: number;
  /** Sealed segments whose indexes stay loaded, across all partitions. @defaultValue 1024 */
  readonly maxLoadedIndexes?: number;
  /** Memory for recently written batches, across all partitions. @defaultValue TAIL_CACHE_BYTES (64 MiB) */
  readonly tailCacheBytes?: number;
  /** Memory for recently written batches of one partition. @defaultValue TAIL_CACHE_PER_PARTITION_BYTES (512 KiB) */
  readonly tailCachePerPartitionBytes?: number;
  /** Log bytes between sparse index entries. @defaultValue 4096 */
  readonly indexIntervalBytes?: number;
  /** Largest batch accepted by one append. @defaultValue 16 MiB */
  readonly maxBatchBytes?: number;
  /** Distinct keys one compaction pass may hold in memory. @defaultValue 1_000_000 */
  readonly maxCompactionKeys?: number;
  /** Bytes of appends one partition may queue for the disk before refusing more. @defaultValue 64 MiB */
  readonly maxPendingBytesPerPartition?: number;
  /** Called with the duration of every append fsync, e.g. to feed a latency histogram. */
  readonly onFsync?: (seconds: number) => void;
}

interface TopicState {
  readonly name: string;
  readonly config: TopicConfig;
  readonly partitions: PartitionLog[];
  roundRobin: number;
}

const TOPIC_META = 'topic.json';
const OPEN_CONCURRENCY = 16;

/**
 * Brook's own storage engine: one directory per partition holding segment files. Single node;
 * durable through group-committed fsync; recovers by scanning only the active segment.
 */
export class EmbeddedEngine implements Engine {
  readonly kind = 'embedded';
  readonly capabilities: EngineCapabilities = { compaction: true, timeIndex: true, durabilityModes: ['fsync', 'os'] };

  private readonly topics = new Map<string, TopicState>();
  private readonly creating = new Map<string, Promise<TopicDescription>>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly fdCache: FdCache;
  private readonly indexCache: IndexCache;
  private readonly tailBudget: TailCacheBudget;
  private readonly lock: DataDirLock;
  private readonly groups: GroupCoordinator;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenanceRunning: Promise<void> | null = null;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(private readonly options: EmbeddedEngineOptions) {
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'engine', engine: 'embedded' });
    this.now = options.now ?? Date.now;
    this.fdCache = new FdCache(options.maxOpenFiles ?? 256);
    this.indexCache = new IndexCache(options.maxLoadedIndexes ?? 1024);
    this.tailBudget = new TailCacheBudget(options.tailCacheBytes ?? TAIL_CACHE_BYTES, options.tailCachePerPartitionBytes ?? TAIL_CACHE_PER_PARTITION_BYTES);
    this.lock = new DataDirLock(options.dataDir);
    this.groups = new GroupCoordinator({
      offsetStore: new InternalTopicOffsetStore(this),
      partitionCount: async (topic) => this.topic(topic).partitions.length,
      now: this.now,
    });
  }

  private get topicsDir(): string {
    return join(this.options.dataDir, 'topics');
  }

  async open(): Promise<void> {
    if (this.state !== 'new') throw new InvalidArgumentError('an engine can be opened once');
    await mkdir(this.topicsDir, { recursive: true });
    await this.lock.acquire();
    await rm(join(this.options.dataDir, 'trash'), { recursive: true, force: true });
    const names = await readdir(this.topicsDir);
    for (let i = 0; i < names.length; i += OPEN_CONCURRENCY) {
      await Promise.all(names.slice(i, i + OPEN_CONCURRENCY).map((name) => this.openTopic(name)));
    }
    this.state = 'open';
    if (!this.topics.has(OFFSETS_TOPIC)) {
      await this.createTopicUnchecked(OFFSETS_TOPIC, {
        partitions: 1,
        cleanupPolicy: 'compact',
        segmentBytes: 4 * 1024 * 1024,
        deleteRetentionMs: 0,
      });
    }
    await this.groups.open();
    const interval = this.options.maintenanceIntervalMs ?? 30_000;
    this.maintenanceTimer = setInterval(() => void this.runMaintenance(), interval);
    this.maintenanceTimer.unref();
    this.logger.info({ dataDir: this.options.dataDir, topics: this.topics.size }, 'embedded engine open');
  }

  private async openTopic(name: string): Promise<void> {
    const dir = join(this.topicsDir, name);
    let config: TopicConfig;
    try {
      config = validateTopicConfig(JSON.parse(await readFile(join(dir, TOPIC_META), 'utf8')) as TopicConfigInput, this.capabilities);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // A topic directory without metadata is a creation that crashed before it finished.
        this.logger.warn({ topic: name }, 'removing half-created topic');
        await rm(dir, { recursive: true, force: true });
        return;
      }
      throw new StorageError(`cannot read metadata of topic "${name}"`, { cause: err });
    }
    const partitions = await Promise.all(
      Array.from({ length: config.partitions }, (_, p) => this.openPartition(name, p, config)),
    );
    this.topics.set(name, { name, config, partitions, roundRobin: 0 });
  }

  private openPartition(topic: string, partition: number, config: TopicConfig): Promise<PartitionLog> {
    return PartitionLog.open({
      dir: join(this.topicsDir, topic, String(partition)),
      topic,
      partition,
      config,
      fdCache: this.fdCache,
      indexCache: this.indexCache,
      tailBudget: this.tailBudget,
      logger: this.logger,
      now: this.now,
      indexIntervalBytes: this.options.indexIntervalBytes ?? 4096,
      maxBatchBytes: this.options.maxBatchBytes ?? 16 * 1024 * 1024,
      maxWaiters: MAX_WAITERS_PER_PARTITION,
      maxPendingBytes: this.options.maxPendingBytesPerPartition ?? MAX_PENDING_BYTES_PER_PARTITION,
      maxProducers: MAX_PRODUCERS_PER_PARTITION,
      batchesPerProducer: PRODUCER_BATCH_MEMORY,
      maxCompactionKeys: this.options.maxCompactionKeys ?? 1_000_000,
      onFsync: this.options.onFsync,
    });
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    clearInterval(this.maintenanceTimer);
    if (!wasOpen) return;
    await this.maintenanceRunning;
    await this.groups.close();
    for (const topic of this.topics.values()) await Promise.all(topic.partitions.map((p) => p.close()));
    await this.fdCache.closeAll();
    await this.lock.release();
    this.logger.info('embedded engine closed');
  }

  /** Runs retention and compaction on every partition now (also runs on a timer). */
  async runMaintenance(): Promise<void> {
    if (this.state !== 'open' || this.maintenanceRunning) return this.maintenanceRunning ?? undefined;
    const run = async (): Promise<void> => {
      for (const topic of [...this.topics.values()]) {
        for (const partition of topic.partitions) {
          try {
            await partition.enforceRetention();
            await partition.compact();
          } catch (err) {
            this.logger.error({ err, topic: topic.name }, 'maintenance failed; will retry next interval');
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

  async createTopic(name: string, config: TopicConfigInput = {}, options: InternalTopicOptions = {}): Promise<TopicDescription> {
    this.assertOpen();
    assertValidTopicName(name);
    if (isInternalTopic(name) && options.internal !== true) {
      throw new InvalidArgumentError(`topic names starting with "__" are reserved for Brook`);
    }
    return this.createTopicUnchecked(name, config);
  }

  private async createTopicUnchecked(name: string, input: TopicConfigInput): Promise<TopicDescription> {
    if (this.topics.has(name) || this.creating.has(name)) throw new TopicExistsError(name);
    const config = validateTopicConfig(input, this.capabilities);
    const creation = (async () => {
      const dir = join(this.topicsDir, name);
      await mkdir(dir, { recursive: true });
      const partitions = await Promise.all(Array.from({ length: config.partitions }, (_, p) => this.openPartition(name, p, config)));
      // Metadata last: its presence is what makes the topic exist after a crash.
      await writeFile(join(dir, `${TOPIC_META}.tmp`), JSON.stringify(config, null, 2));
      await syncFile(join(dir, `${TOPIC_META}.tmp`));
      await rename(join(dir, `${TOPIC_META}.tmp`), join(dir, TOPIC_META));
      await syncFile(dir);
      await syncFile(this.topicsDir);
      const state: TopicState = { name, config, partitions, roundRobin: 0 };
      this.topics.set(name, state);
      this.logger.info({ topic: name, partitions: config.partitions }, 'topic created');
      return describe(state);
    })();
    this.creating.set(name, creation);
    try {
      const description = await creation;
      await this.groups.topicsChanged();
      return description;
    } finally {
      this.creating.delete(name);
    }
  }

  async describeTopic(name: string): Promise<TopicDescription> {
    return describe(this.topic(name));
  }

  async listTopics(): Promise<TopicDescription[]> {
    this.assertOpen();
    return [...this.topics.values()].filter((t) => !isInternalTopic(t.name)).map(describe);
  }

  async deleteTopic(name: string, options: InternalTopicOptions = {}): Promise<void> {
    const topic = this.topic(name);
    if (isInternalTopic(name) && options.internal !== true) throw new InvalidArgumentError(`internal topic "${name}" cannot be deleted`);
    // First, durably: a crash after it leaves the topic without offsets, never offsets without it.
    await this.groups.forgetOffsets(name);
    this.topics.delete(name);
    await Promise.all(topic.partitions.map((p) => p.close()));
    const trash = join(this.options.dataDir, 'trash');
    await mkdir(trash, { recursive: true });
    const moved = join(trash, `${name}-${this.now()}`);
    await rename(join(this.topicsDir, name), moved);
    await syncFile(this.topicsDir);
    await rm(moved, { recursive: true, force: true });
    await this.groups.topicDeleted(name);
    this.logger.info({ topic: name }, 'topic deleted');
  }

  // ── records ───────────────────────────────────────────────────────────────────────────────

  append(topic: string, partition: number, records: readonly ProduceRecord[], options?: AppendOptions): Promise<AppendResult> {
    try {
      return this.partition(topic, partition).append(records, options?.producer);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  checkStoredBatch(batch: Uint8Array): StoredBatchInfo {
    try {
      return checkClientBatch(asBuffer(batch));
    } catch (err) {
      if (err instanceof ClientBatchError) throw new InvalidArgumentError(`invalid stored batch: ${err.message}`);
      throw err;
    }
  }

  appendStored(topic: string, partition: number, batch: Uint8Array, info: StoredBatchInfo, options?: AppendOptions): Promise<AppendResult> {
    try {
      return this.partition(topic, partition).appendStored(asBuffer(batch), info, options?.producer);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  async produce(topic: string, records: readonly ProduceRecord[]): Promise<RecordPosition[]> {
    const state = this.topic(topic);
    if (records.length === 0) throw new InvalidArgumentError('a batch needs at least one record');
    const { targets, byPartition } = routeByKey(records, state.partitions.length, state.roundRobin++ % state.partitions.length);
    const bases = new Map<number, number>();
    await Promise.all(
      [...byPartition].map(async ([p, list]) => {
        const result = await state.partitions[p]!.append(list);
        bases.set(p, result.baseOffset);
      }),
    );
    return targets.map((p) => {
      const offset = bases.get(p)!;
      bases.set(p, offset + 1);
      return { partition: p, offset };
    });
  }

  readStored(topic: string, partition: number, offset: number, limits: StoredReadLimits): Promise<StoredBatchRead> {
    try {
      const { maxRecords, maxBytes } = checkReadLimits(limits.maxRecords, limits.maxBytes);
      return this.partition(topic, partition).readStored(offset, maxRecords, maxBytes, limits.firstBatchAlways === true);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  read(topic: string, partition: number, offset: number, limits: ReadLimits = {}): Promise<ReadResult> {
    try {
      const { maxRecords, maxBytes } = checkReadLimits(limits.maxRecords ?? DEFAULT_MAX_READ_RECORDS, limits.maxBytes ?? DEFAULT_MAX_READ_BYTES);
      return this.partition(topic, partition).read(offset, maxRecords, maxBytes);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  waitForData(topic: string, partition: number, offset: number, options: WaitOptions): Promise<boolean> {
    try {
      return this.partition(topic, partition).waitForData(offset, options);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    if (!Number.isFinite(timestamp)) throw new InvalidArgumentError('timestamp must be a number of milliseconds');
    return this.partition(topic, partition).offsetForTimestamp(timestamp);
  }

  async watermarks(topic: string, partition: number): Promise<PartitionDescription> {
    return this.partition(topic, partition).describe();
  }

  async truncateBefore(topic: string, partition: number, offset: number): Promise<number> {
    this.assertOpen();
    return this.partition(topic, partition).truncateBefore(offset);
  }

  // ── consumer groups ───────────────────────────────────────────────────────────────────────

  async commitOffsets(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void> {
    this.assertOpen();
    for (const c of commits) this.partition(c.topic, c.partition);
    return this.groups.commit(group, commits, fence);
  }

  async fetchOffsets(group: string, topic?: string): Promise<CommittedOffset[]> {
    this.assertOpen();
    return this.groups.fetch(group, topic);
  }

  async joinGroup(request: JoinGroupRequest): Promise<MemberAssignment> {
    this.assertOpen();
    return this.groups.join(request);
  }

  async heartbeat(group: string, memberId: string): Promise<MemberAssignment> {
    this.assertOpen();
    return this.groups.heartbeat(group, memberId);
  }

  async leaveGroup(group: string, memberId: string): Promise<void> {
    this.assertOpen();
    return this.groups.leave(group, memberId);
  }

  async describeGroup(group: string): Promise<GroupDescription> {
    this.assertOpen();
    return this.groups.describe(group);
  }

  async listGroups(): Promise<string[]> {
    this.assertOpen();
    return this.groups.list();
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  private assertOpen(): void {
    if (this.state !== 'open') throw new EngineClosedError();
  }

  private topic(name: string): TopicState {
    this.assertOpen();
    const topic = this.topics.get(name);
    if (!topic) throw new TopicNotFoundError(name);
    return topic;
  }

  private partition(topic: string, partition: number): PartitionLog {
    const state = this.topic(topic);
    const log = Number.isInteger(partition) ? state.partitions[partition] : undefined;
    if (!log) throw new PartitionNotFoundError(topic, partition);
    return log;
  }
}

function describe(topic: TopicState): TopicDescription {
  return { name: topic.name, config: topic.config, partitions: topic.partitions.map((p) => p.describe()) };
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Read limits as given, or INVALID_ARGUMENT when either is not a positive integer. */
function checkReadLimits(maxRecords: number, maxBytes: number): { maxRecords: number; maxBytes: number } {
  if (!Number.isSafeInteger(maxRecords) || maxRecords < 1 || !Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new InvalidArgumentError('maxRecords and maxBytes must be positive integers');
  }
  return { maxRecords, maxBytes };
}

/** A Buffer over the same memory (the codec reads with Buffer's little-endian helpers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
