import type {
  DeadLetter,
  DeadLetterSelection,
  Delivery,
  EnqueueMessage,
  QueueConfig,
  QueueConfigInput,
  QueueStats,
  ReceiveOptions,
} from './types.js';

/**
 * What the HTTP routes, the WebSocket queue session and the metrics call on a queue backend
 * (docs/queues.md): the `QueueManager` (state machine over engine topics) and the
 * JetStream-native `JetStreamQueueService` both implement it. Errors are QueueError subclasses
 * or InvalidArgumentError, with the codes of docs/queues.md "Errors".
 */
export interface QueueService {
  /** Creates a queue, or changes the configuration of an existing one (fields not given keep their value). */
  configure(name: string, input?: QueueConfigInput): Promise<QueueConfig>;
  /** Resolves to the message ids, in order; a duplicate `dedupId` resolves to the first id. */
  enqueue(name: string, messages: readonly EnqueueMessage[]): Promise<string[]>;
  /** Up to `max` messages under a lease; waits up to `waitMs` for the first one. */
  receive(name: string, options?: ReceiveOptions, waitMs?: number, signal?: AbortSignal): Promise<Delivery[]>;
  ack(name: string, receipts: readonly string[]): Promise<void>;
  nack(name: string, receipts: readonly string[], delayMs?: number, error?: string): Promise<void>;
  extend(name: string, receipts: readonly string[], visibilityMs?: number): Promise<void>;
  reject(name: string, receipts: readonly string[], error?: string): Promise<void>;
  describe(name: string): Promise<QueueStats>;
  list(): Promise<QueueStats[]>;
  deadLetters(name: string, limit?: number, after?: string): Promise<DeadLetter[]>;
  deadLetter(name: string, id: string): Promise<DeadLetter | undefined>;
  /** Enqueues the selected dead letters again; resolves to their new ids. */
  redrive(name: string, selection: DeadLetterSelection): Promise<string[]>;
  deleteDeadLetters(name: string, selection: DeadLetterSelection): Promise<number>;
  /** Deletes a queue with its messages and dead letters. */
  deleteQueue(name: string): Promise<void>;
  close(): Promise<void>;
}
