import type { Logger } from 'pino';
import { DEFAULT_SESSION_TIMEOUT_MS } from '../defaults.js';

/** Options of {@link JetStreamEngine}; defaults in {@link JETSTREAM_DEFAULTS}. */
export interface JetStreamEngineOptions {
  /** NATS server URL(s); several for a cluster. @defaultValue 'nats://127.0.0.1:4222' */
  readonly servers?: string | readonly string[];
  /**
   * Namespace of every stream, subject and bucket this engine creates (`<prefix>_<topic>_<p>`,
   * `<prefix>.<topic>.<p>`, `<prefix>_topics`, `<prefix>_offsets`); 1-32 of `[A-Za-z0-9-]`.
   * Brook nodes that share a prefix share topics. @defaultValue 'BROOK'
   */
  readonly prefix?: string;
  readonly logger?: Logger;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** A NATS credentials file (user JWT + NKey seed, as `nsc` writes them), read at `open()`. */
  readonly credsFile?: string;
  /**
   * TLS to the NATS servers: `caFile` to trust a private CA, `certFile` + `keyFile` for a client
   * certificate. Given (even empty), the connection must be TLS. @defaultValue TLS only when the server requires it
   */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  /** Connection name shown by the server's monitoring. @defaultValue 'brook' */
  readonly name?: string;
  /** Replicas of every stream and bucket: 1, or 3 (or 5) on a JetStream cluster. @defaultValue 1 */
  readonly replicas?: number;
  /**
   * Declares that every server runs with `jetstream { sync_interval: always }` (nats-server
   * 2.10+), so an acknowledgement means fsynced: the engine then offers `fsync` durability. The
   * engine cannot verify this (check `/varz` → `jetstream.config.sync_always`). @defaultValue false
   */
  readonly serverSyncAlways?: boolean;
  /** JetStream `duplicate_window`: how long idempotent producer retries are recognised. @defaultValue 120_000 */
  readonly duplicateWindowMs?: number;
  /** Timeout of JetStream API requests and reads. @defaultValue 5_000 */
  readonly requestTimeoutMs?: number;
  /** A publish without a PubAck after this long fails as "outcome unknown". @defaultValue 10_000 */
  readonly ackTimeoutMs?: number;
  /** Publishes awaiting a PubAck at once, across all partitions. @defaultValue 8_192 */
  readonly maxInFlightPublishes?: number;
  /** Largest batch accepted by one append. @defaultValue 16 MiB */
  readonly maxBatchBytes?: number;
  /** Read consumers kept positioned for the next sequential read. @defaultValue 256 */
  readonly maxIdleReadConsumers?: number;
  /** An idle read consumer older than this is deleted. @defaultValue 30_000 */
  readonly readConsumerIdleMs?: number;
  /** Topics createTopic accepts under this prefix. @defaultValue 10_000 */
  readonly maxTopics?: number;
  /** Idempotent producers whose sequences are remembered, across all partitions. @defaultValue 100_000 */
  readonly maxProducers?: number;
  /** How often tombstones of compacted topics are cleaned. @defaultValue 30_000 */
  readonly maintenanceIntervalMs?: number;
  /**
   * How long the consumer-group coordinator's lease lasts without renewal: the longest a failover
   * leaves groups without a coordinator. @defaultValue 3_000
   */
  readonly coordinatorLeaseMs?: number;
  /**
   * How long a node that takes the coordinator over from another (after a crash or a clean
   * handover) refuses joins and heartbeats with the retriable `COORDINATOR_NOT_AVAILABLE`, so
   * members of the previous coordinator have stopped consuming before their partitions are handed
   * out again (docs/jetstream-engine.md, "Failover"). It should be at least the longest session
   * timeout members use; 0 serves at once (a partition may then briefly have two consumers). The
   * first coordinator ever elected under a prefix does not wait. @defaultValue 10_000 (the default session timeout)
   */
  readonly coordinatorTakeoverDelayMs?: number;
  /** Group calls one node may have waiting for the coordinator on another node. @defaultValue 4_096 */
  readonly maxInFlightGroupCalls?: number;
  /** Injectable clock (ms since epoch) for groups and tombstone expiry. @defaultValue Date.now */
  readonly now?: () => number;
}

export const JETSTREAM_DEFAULTS = {
  servers: 'nats://127.0.0.1:4222',
  prefix: 'BROOK',
  name: 'brook',
  replicas: 1,
  serverSyncAlways: false,
  duplicateWindowMs: 120_000,
  requestTimeoutMs: 5_000,
  ackTimeoutMs: 10_000,
  maxInFlightPublishes: 8_192,
  maxBatchBytes: 16 * 1024 * 1024,
  maxIdleReadConsumers: 256,
  readConsumerIdleMs: 30_000,
  maxTopics: 10_000,
  maxProducers: 100_000,
  maintenanceIntervalMs: 30_000,
  coordinatorLeaseMs: 3_000,
  coordinatorTakeoverDelayMs: DEFAULT_SESSION_TIMEOUT_MS,
  maxInFlightGroupCalls: 4_096,
  /** Server-side expiry of read consumers we lost track of. */
  consumerInactiveThresholdMs: 120_000,
  /** Tombstones remembered per compacted partition between cleaning passes. */
  maxPendingTombstones: 10_000,
  /** Streams created, deleted or described at once. */
  adminConcurrency: 16,
} as const;
