/** The `quotas` section of the server's JSON config file (`brook start --config`). */
import { z } from 'zod';
import type { QuotaConfig, TierLimits } from './produce-quotas.js';

const rate = z.number().positive().finite();

const tierSchema = z.strictObject({
  records_per_second: rate.optional(),
  bytes_per_second: rate.optional(),
  burst_records: rate.optional(),
  burst_bytes: rate.optional(),
});

export const quotasFileSchema = z.strictObject({
  default_tier: z.string().min(1).optional(),
  tiers: z.record(z.string().min(1), tierSchema).optional(),
  max_in_flight_bytes: z.int().positive().optional(),
  max_buckets: z.int().positive().optional(),
});

export type QuotasFile = z.infer<typeof quotasFileSchema>;

/** The file's snake_case settings as a QuotaConfig, plus the in-flight bound when given. */
export function quotaConfigFromFile(file: QuotasFile): { quotas: QuotaConfig; maxInFlightBytes?: number } {
  const tiers: Record<string, TierLimits> = {};
  for (const [name, t] of Object.entries(file.tiers ?? {})) {
    tiers[name] = {
      ...(t.records_per_second === undefined ? {} : { recordsPerSecond: t.records_per_second }),
      ...(t.bytes_per_second === undefined ? {} : { bytesPerSecond: t.bytes_per_second }),
      ...(t.burst_records === undefined ? {} : { burstRecords: t.burst_records }),
      ...(t.burst_bytes === undefined ? {} : { burstBytes: t.burst_bytes }),
    };
  }
  const quotas: QuotaConfig = {
    tiers,
    ...(file.default_tier === undefined ? {} : { defaultTier: file.default_tier }),
    ...(file.max_buckets === undefined ? {} : { maxBuckets: file.max_buckets }),
  };
  return file.max_in_flight_bytes === undefined ? { quotas } : { quotas, maxInFlightBytes: file.max_in_flight_bytes };
}
