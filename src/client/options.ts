/** Options of the client, producers and consumers. Defaults live in ./defaults.ts. */
import type { WebSocketConstructor } from './websocket.js';
import type { Credits, StartPosition, TopicPartition } from './wire.js';

export interface ReconnectOptions {
  /** Delay bound of the first reconnect attempt (full jitter picks in `[0, bound)`). @defaultValue 100 */
  readonly baseMs?: number;
  /** Largest delay bound; the bound doubles per failed attempt up to this. @defaultValue 10_000 */
  readonly capMs?: number;
  /** Consecutive failed attempts before the client gives up and closes. @defaultValue Infinity */
  readonly maxAttempts?: number;
}

export interface ClientOptions {
  /**
   * The server: `http://host:7420` (or `ws://`, `https://`, `wss://`); `/v1/ws` is added when
   * the URL has no path. Several nodes of one cluster: the client connects to the first and,
   * whenever a connection drops or an attempt fails, moves on to the next.
   */
  readonly url: string | readonly string[];
  /**
   * The WebSocket class. Defaults to `globalThis.WebSocket` (browsers, Node 22+). On Node 20
   * pass the `ws` package: `WebSocket: (await import('ws')).default`.
   */
  readonly WebSocket?: WebSocketConstructor;
  /**
   * Bearer token, sent as `?token=` (browsers cannot set headers on a WebSocket). A function is
   * called before every connection attempt, so an expired token is replaced on reconnect; with
   * a function, close code 1008 (token refused) leads to a reconnect instead of a fatal error.
   */
  readonly token?: string | (() => string | Promise<string>);
  /** Reconnect after the socket drops; `false` closes the client instead. */
  readonly reconnect?: ReconnectOptions | false;
  /** How long a request waits for its reply once sent. @defaultValue 30_000 */
  readonly requestTimeoutMs?: number;
  /** How long one attempt waits for the server's `welcome`. @defaultValue 10_000 */
  readonly connectTimeoutMs?: number;
  /** Requests awaiting a reply at once; more fail with TOO_MANY_PENDING_REQUESTS. @defaultValue 1024 */
  readonly maxPendingRequests?: number;
  /** How long `close()` waits for producers to flush and consumers to commit. @defaultValue 5_000 */
  readonly closeTimeoutMs?: number;
  /**
   * The WebSocket subprotocol. `binary` (`brook.v1.bin`): records travel as binary frames, values
   * as bytes the server stores and returns untouched, and producers may send `Uint8Array`
   * values; needs a server that speaks it (Brook with the binary subprotocol, docs/protocol.md).
   * `json` (`brook.v1.json`): everything is JSON text. @defaultValue 'binary'
   */
  readonly protocol?: 'binary' | 'json';
  /**
   * `false`: frames go with an all-zero masking key, which the `ws` package (Node) then skips
   * applying — no pass over every byte sent and no copy of it (a tenth of a producer's CPU at
   * 1 KB records). The WebSocket standard asks clients for random keys so that a script in a
   * browser cannot choose the bytes an unencrypted proxy sees; where no untrusted party picks the
   * bytes of your frames, or the connection is `wss://`, the mask protects nothing. Browsers
   * always mask and ignore this; so does any WebSocket class that takes no options argument.
   * @defaultValue true
   */
  readonly maskFrames?: boolean;
}

export interface ProducerOptions<T> {
  readonly topic: string;
  /**
   * Append every record to this partition. Without it the server routes each record by the
   * hash of its key (records without a key go to one partition, round-robin per batch).
   */
  readonly partition?: number;
  /**
   * Producer id + sequence per batch so a retried batch is never appended twice. Needs
   * `partition`. @defaultValue true when `partition` is set, false otherwise
   */
  readonly idempotent?: boolean;
  /** How long a batch waits for more records after its first. @defaultValue 5 */
  readonly lingerMs?: number;
  /** Records per batch (capped by the server's `max_batch_records`). @defaultValue 500 */
  readonly batchSize?: number;
  /**
   * Batches sent and not yet acknowledged. When they are all in flight and the next batch is
   * full, `send()` waits. At most 8 for idempotent producers, and never more than the server
   * says it remembers per producer (`welcome.limits.producer_batches`; 5 when an older server
   * does not say). @defaultValue 5
   */
  readonly maxInflight?: number;
  /** Retries of a batch after a retriable failure (connection lost, RATE_LIMITED, timeout). @defaultValue 10 */
  readonly retries?: number;
  /** Backoff between retries, with full jitter. @defaultValue `{ baseMs: 100, capMs: 5_000 }` */
  readonly retryBackoff?: { readonly baseMs?: number; readonly capMs?: number };
  /** Turns a value into JSON-compatible data before sending. @defaultValue identity */
  readonly encode?: (value: T) => unknown;
}

/**
 * A record to send. `value` is any JSON (after `encode`), or with the binary protocol a `Uint8Array`
 * sent and stored as it is; `null` is a tombstone on compacted topics.
 */
export interface OutgoingRecord<T> {
  readonly key?: string | null;
  readonly value: T;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ConsumerOptions<T> {
  readonly topic: string;
  /**
   * Without `group`: the partition to read. With `group`: read this one partition outside the
   * group's membership, starting at and committing to the group's offsets (like Kafka's
   * `assign()` + commit). @defaultValue 0 without group
   */
  readonly partition?: number;
  /**
   * Where to start. Not allowed for group members, who start at the group's committed offsets
   * (the earliest offset when there are none). @defaultValue 'earliest' ({ group } with `group` and `partition`)
   */
  readonly from?: StartPosition;
  /** Join this consumer group: partitions are assigned by the server and rebalanced. */
  readonly group?: string;
  /**
   * Commit processed records automatically: before every heartbeat (so before a revoked
   * partition is handed over), on revocation and on close. A record counts as processed once
   * the loop asks for the next one. @defaultValue true
   */
  readonly autoCommit?: boolean;
  /**
   * The window granted per subscribed partition: at most this many records (and bytes) are ever
   * buffered in memory per partition. A number sets records only.
   * @defaultValue `{ records: 1000, bytes: max(1 MiB, 2 × the server's max_record_bytes) }`
   */
  readonly credits?: number | Partial<Credits>;
  /**
   * Binary protocol: ask the server for whole stored batches (docs/protocol.md, `stored` frames)
   * — it sends them as it keeps them, without decoding a record, and the SDK checks each batch's
   * CRC-32 before handing records out. A batch goes out only when it fits the credit left, so
   * set `credits` to at least twice the producers' batch size (in records and bytes); otherwise
   * the server falls back to ordinary pushes. Ignored on JSON and by servers that do not offer
   * it. @defaultValue false
   */
  readonly storedBatches?: boolean;
  /** Assignment strategy, when this member is the first of its group. @defaultValue server's ('sticky') */
  readonly strategy?: 'range' | 'round-robin' | 'sticky';
  /** A member silent for this long loses its partitions. @defaultValue server's (10_000) */
  readonly sessionTimeoutMs?: number;
  /** Commit interval for a standalone consumer (`group` + `partition`). @defaultValue 5_000 */
  readonly autoCommitIntervalMs?: number;
  /** Called when partitions are assigned to this member (after join and on rebalance). */
  readonly onAssigned?: (partitions: readonly TopicPartition[]) => void | Promise<void>;
  /**
   * Called when partitions are taken away, before their final auto-commit and before the next
   * heartbeat hands them over; commit here when `autoCommit` is off. Records of those partitions
   * still buffered are dropped (their next owner reads them from the committed offset).
   */
  readonly onRevoked?: (partitions: readonly TopicPartition[]) => void | Promise<void>;
  /** Turns a received JSON value into `T`. @defaultValue identity */
  readonly decode?: (value: unknown) => T;
}

/** A record as consumed. */
export interface ConsumedRecord<T> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  /**
   * The value: the stored bytes as JSON when they parse, else as a string (then `decode`, when
   * given). Over the binary protocol it is decoded on first access only.
   */
  readonly value: T;
  /**
   * The value's bytes. Binary protocol: exactly as stored, a view of the received frame (copy it
   * to keep it beyond the record); JSON protocol: the UTF-8 of the value's JSON text.
   */
  readonly valueBytes: Uint8Array | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Append time, ms since the epoch. */
  readonly timestamp: number;
}

/** Where a sent record landed. */
export interface RecordMetadata {
  readonly partition: number;
  readonly offset: number;
}

/** A message for `BrookClient.enqueue`; all but `value` optional (docs/queues.md). */
export interface EnqueueJob<T = unknown> {
  readonly value: T;
  /** Deliver no earlier than this from now. */
  readonly delayMs?: number;
  /** Epoch ms: served earliest-deadline-first, dead-lettered once past. */
  readonly deadline?: number;
  /** 0-9, higher first among equal deadlines. @defaultValue 0 */
  readonly priority?: number;
  /** Accepted once per queue within its dedup window. */
  readonly dedupId?: string;
  /** One at a time and in order under the queue's `key-sticky` balance. */
  readonly key?: string;
  readonly ttlMs?: number;
}

/** A job as a worker's handler gets it. */
export interface Job<T = unknown> {
  readonly id: string;
  /** What ack/nack/extend name; the worker settles it for you. */
  readonly receipt: string;
  /** 1 on the first delivery. */
  readonly deliveries: number;
  readonly value: T;
  readonly key: string | null;
  readonly enqueuedAt: number;
  readonly deadline: number | null;
  readonly priority: number;
}

export interface WorkerOptions<T = unknown> {
  /** Jobs handled at once; the server pushes no more than this. @defaultValue 10 (at most 1000) */
  readonly concurrency?: number;
  /** Lease of each delivery. @defaultValue 30_000 */
  readonly visibilityMs?: number;
  /** How often the leases of running jobs are extended. @defaultValue visibilityMs / 3 */
  readonly extendEveryMs?: number;
  /**
   * Delay before a failed job is retried; undefined leaves it to the queue's backoff (exponential,
   * full jitter). @defaultValue the queue's backoff
   */
  readonly retryDelayMs?: (error: unknown, job: Job<T>) => number | undefined;
}

/** Runs one job; resolving acknowledges it, throwing (or rejecting) releases it for a retry. */
export type JobHandler<T = unknown> = (job: Job<T>) => unknown;
