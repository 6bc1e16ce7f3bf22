import type { ProduceRecord, RecordHeaders } from './types.js';

/** Per-record overhead: the embedded format's fixed fields (lengths, deltas, header count). */
const RECORD_FIXED_BYTES = 22;

/**
 * The size `maxRecordBytes` is checked against, the same on every engine: key + value + headers
 * plus a fixed overhead. It equals the record's encoded size in the embedded batch format.
 */
export function recordSize(record: ProduceRecord): number {
  let size = RECORD_FIXED_BYTES;
  if (record.key) size += record.key.length;
  if (record.value) size += record.value.length;
  const headers = record.headers;
  if (headers) {
    for (const name in headers) size += 6 + Buffer.byteLength(name) + Buffer.byteLength(headers[name]!);
  }
  return size;
}

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
