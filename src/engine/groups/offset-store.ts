import type { CommittedOffset } from '../types.js';

/** A committed offset with the group it belongs to: the unit an {@link OffsetStore} keeps. */
export interface GroupOffsetRecord extends CommittedOffset {
  readonly group: string;
}

/**
 * Durable storage for committed offsets, provided by the engine (embedded: a compacted internal
 * topic; JetStream: a KV bucket). The coordinator keeps the working copy in memory and writes
 * through; it never reads the store after {@link OffsetStore.load}.
 */
export interface OffsetStore {
  /** The latest record per (group, topic, partition). Called once, on open. */
  load(): Promise<GroupOffsetRecord[]>;
  /** Stores the records; they must be durable when the promise resolves. Later calls win. */
  persist(records: readonly GroupOffsetRecord[]): Promise<void>;
  /**
   * Removes these offsets durably (their topic is being deleted), so a later topic of the same
   * name does not inherit them. Stores that purge by topic on their own may omit it.
   */
  forget?(keys: readonly OffsetKey[]): Promise<void>;
}

export interface OffsetKey {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
}
