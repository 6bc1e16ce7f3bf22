import { DEFAULT_TOPIC_CONFIG, MAX_PARTITIONS } from './defaults.js';
import { InvalidArgumentError } from './errors.js';
import type { Durability, TopicConfig, TopicConfigInput } from './types.js';

/** What an engine can honour; the rules common to every engine live below. */
export interface TopicConfigLimits {
  readonly durabilityModes: readonly Durability[];
  /** Smallest `retentionMs` the engine accepts. @defaultValue 1 */
  readonly minRetentionMs?: number;
  /** Largest duration setting in ms. @defaultValue Number.MAX_SAFE_INTEGER */
  readonly maxDurationMs?: number;
  /** Explains why a durability mode is missing, for the error message. */
  readonly durabilityHint?: string;
}

const MIN_SEGMENT_BYTES = 1024;
const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024; // embedded: positions in the sparse index are u32

/**
 * Fills defaults and checks ranges: the one place topic settings are validated, for every engine.
 * Durability defaults to the strongest mode the engine can honour; asking for one it cannot
 * honour is refused rather than silently weakened.
 */
export function validateTopicConfig(input: TopicConfigInput, limits: TopicConfigLimits): TopicConfig {
  const strongest: Durability = limits.durabilityModes.includes('fsync') ? 'fsync' : 'os';
  const maxDuration = limits.maxDurationMs ?? Number.MAX_SAFE_INTEGER;
  const config: TopicConfig = { ...DEFAULT_TOPIC_CONFIG, durability: strongest, ...stripUndefined(input) };
  const intIn = (name: keyof TopicConfig, min: number, max: number): void => {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
    }
  };
  intIn('partitions', 1, MAX_PARTITIONS);
  intIn('segmentBytes', MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
  intIn('segmentMs', 1, maxDuration);
  intIn('maxRecordBytes', 1, 64 * 1024 * 1024);
  intIn('deleteRetentionMs', 0, maxDuration);
  if (config.retentionMs !== null) intIn('retentionMs', limits.minRetentionMs ?? 1, maxDuration);
  if (config.retentionBytes !== null) intIn('retentionBytes', 1, Number.MAX_SAFE_INTEGER);
  if (config.cleanupPolicy !== 'delete' && config.cleanupPolicy !== 'compact') {
    throw new InvalidArgumentError(`cleanupPolicy must be "delete" or "compact"`);
  }
  if (config.durability !== 'fsync' && config.durability !== 'os') {
    throw new InvalidArgumentError(`durability must be "fsync" or "os"`);
  }
  if (!limits.durabilityModes.includes(config.durability)) {
    throw new InvalidArgumentError(`durability "${config.durability}" is not available${limits.durabilityHint ? `: ${limits.durabilityHint}` : ''}`);
  }
  return config;
}

function stripUndefined(input: TopicConfigInput): TopicConfigInput {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as TopicConfigInput;
}
