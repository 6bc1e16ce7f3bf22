import type { RecordHeaders } from '../../engine/index.js';

interface SizedRecord {
  readonly key?: Uint8Array | null;
  readonly value: Uint8Array | null;
  readonly headers?: RecordHeaders;
}

/**
 * Record bytes as quotas and metrics count them: key + value + header names and values, the
 * same whichever transport or encoding carried them.
 */
export function recordBytes(records: readonly SizedRecord[]): number {
  let total = 0;
  for (const r of records) {
    total += (r.key?.byteLength ?? 0) + (r.value?.byteLength ?? 0);
    if (r.headers !== undefined) {
      for (const name in r.headers) total += Buffer.byteLength(name) + Buffer.byteLength(r.headers[name] ?? '');
    }
  }
  return total;
}
