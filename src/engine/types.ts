/**
 * The Engine: the one seam between Brook and storage.
 *
 * Everything above src/engine talks to this interface only. Two implementations are planned from
 * the start (embedded: Brook's own segment log; jetstream: NATS JetStream), and the mapping of
 * every concept here onto both is written down in docs/engines.md. A conformance suite
 * (test/engine/conformance.ts) runs against every implementation.
 */

/** Bytes, or null (a null value is a tombstone on compacted topics). */
export type Bytes = Uint8Array;

/** Header values are strings: JSON-friendly and what NATS headers carry natively. */
export type RecordHeaders = Readonly<Record<string, string>>;

/** A record as a producer hands it to the engine. */
export interface ProduceRecord {
  readonly key?: Bytes | null;
  readonly value: Bytes | null;
  readonly headers?: RecordHeaders;
}

/** A record as stored and read back. */
export interface StoredRecord {
  readonly offset: number;
  /** Milliseconds since the epoch, assigned at append; never decreases within a partition. */
  readonly timestamp: number;
  readonly key: Bytes | null;
  readonly value: Bytes | null;
  readonly headers: RecordHeaders;
}

export type CleanupPolicy = 'delete' | 'compact';

/**
 * When an append is acknowledged.
 * - `fsync`: after the data is on stable storage (group-committed fsync). Survives power loss.
 * - `os`: after the data is handed to the operating system. Survives a process crash, not an
 *   OS crash or power loss.
 */
export type Durability = 'fsync' | 'os';

export interface TopicConfig {
  /** Number of partitions; fixed at creation. */
  readonly partitions: number;
  /** Delete whole segments older than this. `null` keeps data forever. @defaultValue null */
  readonly retentionMs: number | null;
  /** Per-partition size bound; oldest whole segments are deleted past it. @defaultValue null */
  readonly retentionBytes: number | null;
  /** `compact` keeps the latest value per key. @defaultValue 'delete' */
  readonly cleanupPolicy: CleanupPolicy;
  /** How long a tombstone survives compaction, so readers can see deletes. @defaultValue 86_400_000 */
  readonly deleteRetentionMs: number;
  /** @defaultValue 'fsync' */
  readonly durability: Durability;
  /** Roll the active segment past this many bytes. @defaultValue 64 MiB */
  readonly segmentBytes: number;
  /** Roll the active segment when its first record is older than this. @defaultValue 7 days */
  readonly segmentMs: number;
  /** Largest accepted record (key + value + headers). @defaultValue 1 MiB */
  readonly maxRecordBytes: number;
}

export type TopicConfigInput = Partial<TopicConfig>;

export interface PartitionDescription {
  readonly partition: number;
  /** First offset that can still be read. */
  readonly lowWatermark: number;
  /** Offset the next appended record will get; everything below is durable and readable. */
  readonly highWatermark: number;
}

export interface TopicDescription {
  readonly name: string;
  readonly config: TopicConfig;
  readonly partitions: readonly PartitionDescription[];
}

/** Idempotent producer identity: a retried batch with the same id and sequence is not appended twice. */
export interface ProducerIdentity {
  /** Opaque, stable across retries and reconnects; at most 64 bytes of UTF-8. */
  readonly id: string;
  /** Sequence number of the batch's first record; the next batch starts at `sequence + count`. */
  readonly sequence: number;
}

export interface AppendOptions {
  /** Idempotence: duplicates of a recent batch return the original offsets. */
  readonly producer?: ProducerIdentity;
}

export interface AppendResult {
  readonly partition: number;
  readonly baseOffset: number;
  readonly count: number;
  /** Append timestamp given to every record of the batch. */
  readonly timestamp: number;
  /** True when this batch was a retry of one already appended. */
  readonly duplicate: boolean;
}

export interface RecordPosition {
  readonly partition: number;
  readonly offset: number;
}

export interface ReadLimits {
  /** @defaultValue 500 */
  readonly maxRecords?: number;
  /** Soft bound: at least one record is returned when one exists. @defaultValue 1 MiB */
  readonly maxBytes?: number;
}

/** Limits of a {@link Engine.readStored}: hard bounds on whole batches. */
export interface StoredReadLimits extends Required<ReadLimits> {
  /**
   * Take the first batch that delivers a record even when it alone exceeds the limits (and
   * nothing after it then), instead of answering `blocked`: for a reader that sends only the
   * records its own limits allow, as `read` does with its soft bound. @defaultValue false
   */
  readonly firstBatchAlways?: boolean;
}

export interface ReadResult {
  readonly records: StoredRecord[];
  /** Where the next read continues (past compacted gaps too). */
  readonly nextOffset: number;
  readonly lowWatermark: number;
  readonly highWatermark: number;
}

/** What a client-built stored batch holds (Engine.checkStoredBatch). */
export interface StoredBatchInfo {
  readonly count: number;
  readonly producerId: string | null;
  /** Key, value and header bytes, as quotas and metrics count them (recordBytes). */
  readonly payloadBytes: number;
  /** The records' sizes as `maxRecordBytes` and batch bounds count them, summed. */
  readonly recordBytes: number;
  /** The largest record's size. */
  readonly largestRecord: number;
}

/**
 * Whole stored batches from a position, as the engine keeps them (for the `stored` push frame,
 * docs/protocol.md): no record is decoded.
 */
export interface StoredBatchRead {
  /**
   * Each a whole batch in the storage format (docs/storage-format.md); the first may begin
   * before the offset read from. Views of engine memory: do not write to them.
   */
  readonly batches: Uint8Array[];
  /** Records at or after the offset read from, in all the batches. */
  readonly records: number;
  /** The batches' lengths added up. */
  readonly bytes: number;
  /** Key + value + header bytes of those records (what metrics count). */
  readonly recordBytes: number;
  /** Per batch: the records it delivers (at or after the offset read from). */
  readonly batchRecords: number[];
  /** Per batch: their key + value + header bytes. */
  readonly batchRecordBytes: number[];
  /** Per batch: the offset after its last record. */
  readonly batchEnds: number[];
  /** Where the next read continues (past compacted gaps too). */
  readonly nextOffset: number;
  readonly lowWatermark: number;
  readonly highWatermark: number;
  /** When the first batch does not fit the limits, what it needs (nothing else is returned); else null. */
  readonly blocked: { readonly records: number; readonly bytes: number } | null;
}

export interface WaitOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface OffsetCommit extends TopicPartition {
  readonly offset: number;
  readonly metadata?: string;
}

export interface CommittedOffset extends TopicPartition {
  readonly offset: number;
  readonly metadata: string;
  readonly committedAt: number;
}

/** Who is committing: when given, commits are fenced to the member's current partitions. */
export interface MemberFence {
  readonly memberId: string;
  readonly generation: number;
}

export type AssignmentStrategy = 'range' | 'round-robin' | 'sticky';

export interface JoinGroupRequest {
  readonly group: string;
  /** Rejoin with a previous id to keep sticky partitions; omitted for a new member. */
  readonly memberId?: string;
  readonly clientId?: string;
  readonly topics: readonly string[];
  /** A member that does not heartbeat within this loses its partitions. @defaultValue 10_000 */
  readonly sessionTimeoutMs?: number;
  /** Chosen by the first member; later members must agree. @defaultValue 'sticky' */
  readonly strategy?: AssignmentStrategy;
}

/**
 * A member's view after join or heartbeat. `assignment` lists only the partitions the member
 * may consume now: a partition moving to it from another member appears once the previous owner
 * has released it (acknowledged by its next heartbeat) or its session expired, so two members
 * never own one partition at once and no record is skipped.
 */
export interface MemberAssignment {
  readonly group: string;
  readonly memberId: string;
  readonly generation: number;
  readonly assignment: readonly TopicPartition[];
  /** Heartbeat at least this often. */
  readonly heartbeatIntervalMs: number;
  readonly sessionTimeoutMs: number;
}

export interface GroupMemberDescription {
  readonly memberId: string;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly assignment: readonly TopicPartition[];
  readonly lastHeartbeatAt: number;
}

export interface GroupDescription {
  readonly group: string;
  readonly generation: number;
  readonly strategy: AssignmentStrategy;
  readonly members: readonly GroupMemberDescription[];
  readonly offsets: readonly CommittedOffset[];
}

/** Topics whose names start with `__` belong to Brook: only its own components create or delete them. */
export interface InternalTopicOptions {
  /** @defaultValue false */
  readonly internal?: boolean;
}

/** What an engine can and cannot do; the conformance suite skips with these reasons. */
export interface EngineCapabilities {
  readonly compaction: boolean;
  readonly timeIndex: boolean;
  readonly durabilityModes: readonly Durability[];
}

export interface Engine {
  readonly kind: string;
  readonly capabilities: EngineCapabilities;

  /** Opens storage and recovers; resolves when the engine can serve. */
  open(): Promise<void>;
  /** Flushes everything acknowledged or pending and releases resources. Idempotent. */
  close(): Promise<void>;

  /** `internal` lets Brook's own components (work queues) create `__` topics; users never pass it. */
  createTopic(name: string, config?: TopicConfigInput, options?: InternalTopicOptions): Promise<TopicDescription>;
  describeTopic(name: string): Promise<TopicDescription>;
  listTopics(): Promise<TopicDescription[]>;
  deleteTopic(name: string, options?: InternalTopicOptions): Promise<void>;

  /** Appends a batch to one partition; resolves after the topic's durability is met. */
  append(
    topic: string,
    partition: number,
    records: readonly ProduceRecord[],
    options?: AppendOptions,
  ): Promise<AppendResult>;
  /** Routes each record by key hash (records without a key go together to one partition). */
  produce(topic: string, records: readonly ProduceRecord[]): Promise<RecordPosition[]>;
  /**
   * Optional, with {@link Engine.appendStored}: checks a batch a client built in this engine's
   * stored layout (binary produce kind 0x05, docs/protocol.md "Stored produce"); throws
   * InvalidArgumentError when it is malformed. Engines without a batch format leave both out.
   */
  checkStoredBatch?(batch: Uint8Array): StoredBatchInfo;
  /** Appends a batch {@link Engine.checkStoredBatch} accepted (its `info`), as `append` would its records. */
  appendStored?(topic: string, partition: number, batch: Uint8Array, info: StoredBatchInfo, options?: AppendOptions): Promise<AppendResult>;

  /**
   * Reads from `offset`. An offset below the low watermark or above the high watermark throws
   * OffsetOutOfRangeError; `offset === highWatermark` returns no records.
   */
  read(topic: string, partition: number, offset: number, limits?: ReadLimits): Promise<ReadResult>;
  /**
   * Optional: whole stored batches from `offset`, within `limits` as hard bounds (records at or
   * after `offset`, and the batches' total length). Engines without a batch format of their own
   * leave it out; callers then use `read`.
   */
  readStored?(topic: string, partition: number, offset: number, limits: StoredReadLimits): Promise<StoredBatchRead>;
  /** Resolves true once a record at or past `offset` is readable, false on timeout or abort. */
  waitForData(topic: string, partition: number, offset: number, options: WaitOptions): Promise<boolean>;
  /** First offset whose timestamp is >= `timestamp`; the high watermark when there is none. */
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number>;
  watermarks(topic: string, partition: number): Promise<PartitionDescription>;
  /**
   * Discards records below `offset` (the caller no longer needs them; work queues call it for
   * finished messages). Engines may keep some of them (the embedded engine drops whole sealed
   * segments only), so the low watermark afterwards is at most `offset`; records at or above
   * `offset` are never touched. An offset above the high watermark is an OffsetOutOfRangeError.
   * Resolves to the new low watermark.
   */
  truncateBefore(topic: string, partition: number, offset: number): Promise<number>;

  commitOffsets(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void>;
  fetchOffsets(group: string, topic?: string): Promise<CommittedOffset[]>;

  joinGroup(request: JoinGroupRequest): Promise<MemberAssignment>;
  heartbeat(group: string, memberId: string): Promise<MemberAssignment>;
  leaveGroup(group: string, memberId: string): Promise<void>;
  describeGroup(group: string): Promise<GroupDescription>;
  listGroups(): Promise<string[]>;
}
