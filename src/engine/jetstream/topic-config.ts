import { validateTopicConfig as validateCommon } from '../topic-config.js';
import type { Durability, TopicConfig, TopicConfigInput } from '../types.js';

/** JetStream durations are int64 nanoseconds; keep `ms * 1e6` well inside that. */
const MAX_DURATION_MS = 9_000_000_000_000;
/** nats-server refuses a stream `max_age` below 100 ms. */
const MIN_RETENTION_MS = 100;

/** The common rules plus JetStream's own limits. */
export function validateTopicConfig(input: TopicConfigInput, durabilityModes: readonly Durability[]): TopicConfig {
  return validateCommon(input, {
    durabilityModes,
    minRetentionMs: MIN_RETENTION_MS,
    maxDurationMs: MAX_DURATION_MS,
    durabilityHint:
      'JetStream acknowledges before fsync unless every server runs with jetstream { sync_interval: always } ' +
      '(nats-server 2.10+); say so with the engine option serverSyncAlways',
  });
}
