import { DEFAULT_TOPIC_CONFIG, MAX_PARTITIONS } from '../defaults.js';
import { InvalidArgumentError } from '../errors.js';
import type { TopicConfig, TopicConfigInput } from '../types.js';

const MIN_SEGMENT_BYTES = 1024;
const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024; // positions in the sparse index are u32

/** Fills defaults and checks ranges; the one place topic settings are validated. */
export function validateTopicConfig(input: TopicConfigInput): TopicConfig {
  const config: TopicConfig = { ...DEFAULT_TOPIC_CONFIG, ...stripUndefined(input) };
  const intIn = (name: keyof TopicConfig, min: number, max: number): void => {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
    }
  };
  intIn('partitions', 1, MAX_PARTITIONS);
  intIn('segmentBytes', MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
  intIn('segmentMs', 1, Number.MAX_SAFE_INTEGER);
  intIn('maxRecordBytes', 1, 64 * 1024 * 1024);
  intIn('deleteRetentionMs', 0, Number.MAX_SAFE_INTEGER);
  if (config.retentionMs !== null) intIn('retentionMs', 1, Number.MAX_SAFE_INTEGER);
  if (config.retentionBytes !== null) intIn('retentionBytes', 1, Number.MAX_SAFE_INTEGER);
  if (config.cleanupPolicy !== 'delete' && config.cleanupPolicy !== 'compact') {
    throw new InvalidArgumentError(`cleanupPolicy must be "delete" or "compact"`);
  }
  if (config.durability !== 'fsync' && config.durability !== 'os') {
    throw new InvalidArgumentError(`durability must be "fsync" or "os"`);
  }
  return config;
}

function stripUndefined(input: TopicConfigInput): TopicConfigInput {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as TopicConfigInput;
}
