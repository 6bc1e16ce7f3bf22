/**
 * Engine objects in their JSON wire form: snake_case keys, written out field by field so the
 * HTTP contract never changes by accident when an engine type grows.
 */
import type {
  CommittedOffset,
  GroupDescription,
  MemberAssignment,
  PartitionDescription,
  TopicConfig,
  TopicDescription,
  TopicPartition,
} from '../engine/index.js';

export interface TopicConfigWire {
  readonly partitions: number;
  readonly retention_ms: number | null;
  readonly retention_bytes: number | null;
  readonly cleanup_policy: TopicConfig['cleanupPolicy'];
  readonly delete_retention_ms: number;
  readonly durability: TopicConfig['durability'];
  readonly segment_bytes: number;
  readonly segment_ms: number;
  readonly max_record_bytes: number;
}

export function topicConfigWire(c: TopicConfig): TopicConfigWire {
  return {
    partitions: c.partitions,
    retention_ms: c.retentionMs,
    retention_bytes: c.retentionBytes,
    cleanup_policy: c.cleanupPolicy,
    delete_retention_ms: c.deleteRetentionMs,
    durability: c.durability,
    segment_bytes: c.segmentBytes,
    segment_ms: c.segmentMs,
    max_record_bytes: c.maxRecordBytes,
  };
}

export function partitionWire(p: PartitionDescription): { partition: number; low_watermark: number; high_watermark: number } {
  return { partition: p.partition, low_watermark: p.lowWatermark, high_watermark: p.highWatermark };
}

export function topicWire(t: TopicDescription): {
  name: string;
  partitions: ReturnType<typeof partitionWire>[];
  config: TopicConfigWire;
} {
  return { name: t.name, partitions: t.partitions.map(partitionWire), config: topicConfigWire(t.config) };
}

export function topicPartitionWire(tp: TopicPartition): { topic: string; partition: number } {
  return { topic: tp.topic, partition: tp.partition };
}

export function committedOffsetWire(c: CommittedOffset): {
  topic: string;
  partition: number;
  offset: number;
  metadata: string;
  committed_at: number;
} {
  return { topic: c.topic, partition: c.partition, offset: c.offset, metadata: c.metadata, committed_at: c.committedAt };
}

export function assignmentWire(a: MemberAssignment): Record<string, unknown> {
  return {
    group: a.group,
    member_id: a.memberId,
    generation: a.generation,
    assignment: a.assignment.map(topicPartitionWire),
    heartbeat_interval_ms: a.heartbeatIntervalMs,
    session_timeout_ms: a.sessionTimeoutMs,
  };
}

export function groupWire(g: GroupDescription): Record<string, unknown> {
  return {
    group: g.group,
    generation: g.generation,
    strategy: g.strategy,
    members: g.members.map((m) => ({
      member_id: m.memberId,
      client_id: m.clientId,
      topics: m.topics,
      assignment: m.assignment.map(topicPartitionWire),
      last_heartbeat_at: m.lastHeartbeatAt,
    })),
    offsets: g.offsets.map(committedOffsetWire),
  };
}
