import type { AssignmentStrategy } from '../types.js';
import type { OffsetStore } from './offset-store.js';

export interface GroupCoordinatorOptions {
  readonly offsetStore: OffsetStore;
  /** Partition count of a topic; throws TopicNotFoundError for unknown topics. */
  readonly partitionCount: (topic: string) => Promise<number>;
  /** Clock for session expiry and `committedAt`. @defaultValue Date.now */
  readonly now?: () => number;
  /** How often expired members are evicted by a background (unref'd) timer. @defaultValue 500 */
  readonly sweepIntervalMs?: number;
  /** Groups with members or committed offsets; joining or committing to one more fails. @defaultValue 10_000 */
  readonly maxGroups?: number;
  /** @defaultValue 1_000 */
  readonly maxMembersPerGroup?: number;
}

export const DEFAULT_SWEEP_INTERVAL_MS = 500;
export const DEFAULT_MAX_GROUPS = 10_000;
export const DEFAULT_MAX_MEMBERS_PER_GROUP = 1_000;
export const DEFAULT_ASSIGNMENT_STRATEGY: AssignmentStrategy = 'sticky';
/** Topics one member may subscribe to. */
export const MAX_TOPICS_PER_MEMBER = 1_000;
/** Longest group name, member id and client id, in UTF-16 code units. */
export const MAX_ID_LENGTH = 255;
/** Longest commit metadata, in UTF-16 code units (Kafka's `offset.metadata.max.bytes` is 4096). */
export const MAX_OFFSET_METADATA_LENGTH = 4096;
