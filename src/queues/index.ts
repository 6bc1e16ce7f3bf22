/** Work queues on the Engine: leases, acks, retries with jitter, dead letters, delays, deadlines (docs/queues.md). */
export { QueueManager, type QueueManagerOptions } from './manager.js';
export type { QueueService } from './service.js';
export type { QueueObserver } from './queue.js';
export type { QueueLog, QueueLogs, QueueStorage } from './storage.js';
export { EngineQueueStorage } from './engine-storage.js';
export { DEFAULT_QUEUE_CONFIG, MAX_PRIORITY, MAX_RECEIVE, MAX_VISIBILITY_MS, assertValidQueueName, resolveQueueConfig } from './config.js';
export { fullJitterDelay } from './backoff.js';
export * from './errors.js';
export type * from './types.js';
export { deadLetterJson, deliveriesJson, enqueueMessageFromWire, type WireEnqueueMessage } from './wire.js';
