/**
 * The JetStream engine: Brook's Engine on NATS JetStream streams (one per partition), with topic
 * metadata and committed offsets in KV buckets. See docs/jetstream-engine.md.
 */
export { JetStreamEngine } from './jetstream-engine.js';
export type { JetStreamEngineOptions } from './options.js';
