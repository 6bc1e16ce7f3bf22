export type * from './types.js';
export * from './errors.js';
export * from './defaults.js';
export { assertValidTopicName, isInternalTopic } from './topic-name.js';
export { hashKey, partitionForKey } from './partitioner.js';
export { recordBytes } from './record-size.js';
