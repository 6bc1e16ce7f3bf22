/** Work queues mapped onto JetStream itself (docs/queues.md, "JetStream-native backend"). */
export { JetStreamQueueService, type JetStreamQueueServiceOptions } from './jetstream-queue-service.js';
