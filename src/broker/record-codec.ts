import type { ProduceRecord, StoredRecord } from '../engine/index.js';

/** A record as a producer writes it in a frame (the HTTP API's shape). */
export interface RecordInput {
  readonly key?: string | null | undefined;
  readonly value: unknown;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * How records become bytes and JSON. Passed in by whoever wires the session (the server), so
 * that HTTP and WebSocket share one encoding and the broker does not decide what a value looks
 * like on the wire.
 */
export interface RecordCodec {
  toProduceRecord(input: RecordInput): ProduceRecord;
  /** One stored record as the text of a JSON object. */
  recordJson(record: StoredRecord): string;
}

/** Records as the text of one JSON array. */
export function recordsJson(codec: RecordCodec, records: readonly StoredRecord[]): string {
  let out = '[';
  for (let i = 0; i < records.length; i++) {
    if (i > 0) out += ',';
    out += codec.recordJson(records[i]!);
  }
  return out + ']';
}
