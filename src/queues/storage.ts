/**
 * The storage seam of work queues. A queue needs two append-only logs (its journal and its
 * dead letters) and a catalog of configurations; `EngineQueueStorage` keeps them in internal
 * topics of any Engine. A storage that maps queues onto native features (JetStream work-queue
 * streams, issue #7) implements the same interface.
 */
import type { ProduceRecord, StoredRecord } from '../engine/index.js';

/** An append-only log with group commit: appends of one tick share one engine append. */
export interface QueueLog {
  /**
   * Appends `records` after every earlier append; resolves to the offset of the first once the
   * write is durable. Offsets of one call are contiguous.
   */
  append(records: readonly ProduceRecord[]): Promise<number>;
  /** Calls `onRecord` for every record from the low watermark to the end, in order. */
  replay(onRecord: (record: StoredRecord) => void): Promise<void>;
  /** Lets the storage drop records below `offset` (whole segments at a time on the embedded engine). */
  truncateBefore(offset: number): Promise<void>;
  /** Offset the next record will get, as far as this process knows. */
  readonly nextOffset: number;
  readonly lowWatermark: number;
}

export interface QueueLogs {
  readonly journal: QueueLog;
  readonly deadLetters: QueueLog;
}

export interface QueueStorage {
  /** Every configured queue with its stored configuration (JSON, validated by the caller). */
  loadCatalog(): Promise<Map<string, unknown>>;
  /** Stores a queue's configuration durably; null forgets the queue. */
  saveConfig(name: string, config: unknown): Promise<void>;
  /** Opens (creating when missing) the logs of one queue. */
  open(name: string): Promise<QueueLogs>;
  /** Deletes the logs of one queue. */
  drop(name: string): Promise<void>;
}
