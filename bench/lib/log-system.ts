import type { AnySystemName } from './args.js';
import type { Batch, PartitionReader } from './workload.js';

/**
 * One system under test, as the log and sdk suites drive it. Each implementation owns its server or
 * engine and its connections: `start` brings them up, `stop` tears everything down.
 */
export interface LogSystem {
  readonly name: AnySystemName;
  /** Short label for tables. */
  readonly label: string;
  /** What an acknowledged publish means on this system, printed under the table. */
  readonly durability: string;
  start(): Promise<void>;
  /** A topic (stream, key set) of `partitions` partitions, empty. */
  createTopic(topic: string, partitions: number): Promise<void>;
  /** Resolves once the system acknowledged every record of the batch. */
  publish(topic: string, batch: Batch): Promise<void>;
  /** A reader of `partition` from its first record. */
  reader(topic: string, partition: number): Promise<PartitionReader>;
  /** Frees the topic's storage so the next workload starts clean. */
  deleteTopic(topic: string): Promise<void>;
  stop(): Promise<void>;
}
