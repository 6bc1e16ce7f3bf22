import type { TopicConfig } from './types.js';

/** Every engine default in one place. */
export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  partitions: 1,
  retentionMs: null,
  retentionBytes: null,
  cleanupPolicy: 'delete',
  deleteRetentionMs: 86_400_000,
  durability: 'fsync',
  segmentBytes: 64 * 1024 * 1024,
  segmentMs: 7 * 86_400_000,
  maxRecordBytes: 1024 * 1024,
};

export const MAX_PARTITIONS = 1024;
export const DEFAULT_MAX_READ_RECORDS = 500;
export const DEFAULT_MAX_READ_BYTES = 1024 * 1024;
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
export const MIN_SESSION_TIMEOUT_MS = 1_000;
export const MAX_SESSION_TIMEOUT_MS = 300_000;
/**
 * Most recent batches remembered per idempotent producer and partition, and so the most an
 * idempotent producer may have in flight (Kafka keeps 5). Durable appends take milliseconds:
 * a 1 KB publisher on one partition moved 12–15% more with 8 batches in flight than with 5.
 */
export const PRODUCER_BATCH_MEMORY = 8;
/** Idempotent producers remembered per partition; the least recently used is forgotten. */
export const MAX_PRODUCERS_PER_PARTITION = 10_000;
/** Bytes of appends queued for one partition's disk writer; more are refused (retriable). */
export const MAX_PENDING_BYTES_PER_PARTITION = 64 * 1024 * 1024;
/** Memory for recently written batches, across all partitions of an embedded engine. */
export const TAIL_CACHE_BYTES = 64 * 1024 * 1024;
/**
 * Memory for recently written batches of one partition. Small on purpose: cached batches live in
 * slabs (ArrayBuffers), and V8 frees an ArrayBuffer that reached the old generation only at a
 * full collection. At 10,000 CDC changes/s (about 5 MB/s) a 4 MiB cap kept each slab about a
 * second, so 5 MB/s of dead slabs piled up in the old generation and forced a full collection
 * (a 10–25 ms stall) every ~9 s even with 64 MiB of heap headroom; at 512 KiB (about 100 ms of
 * that stream, slabs of at most 128 KiB) they die young and none happened in 15 s
 * (docs/runtime.md). A consumer further behind reads the page cache instead, and so does every
 * consumer of batches larger than the cap (a 1,000-record batch of 1 KB records is not cached).
 */
export const TAIL_CACHE_PER_PARTITION_BYTES = 512 * 1024;
/** Readers parked in waitForData per partition; more are refused rather than queued. */
export const MAX_WAITERS_PER_PARTITION = 10_000;
