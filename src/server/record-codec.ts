/**
 * Records between JSON and bytes. Produce: a value is stored as the UTF-8 bytes of
 * `JSON.stringify(value)` (JSON `null` is stored as a null value, a tombstone on compacted
 * topics); a key as its UTF-8 bytes. Fetch: a value that parses as JSON is returned as that JSON,
 * anything else as a string (UTF-8, invalid sequences replaced).
 *
 * The fetch response is built as one string: a stored value that is valid JSON is spliced in
 * verbatim, so a record is parsed once (to check it) and never re-serialized.
 */
import type { ProduceRecord, ReadResult, RecordPosition, StoredRecord } from '../engine/index.js';

export interface RecordInput {
  readonly key?: string | null | undefined;
  readonly value: unknown;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

export function toProduceRecord(input: RecordInput): ProduceRecord {
  const key = input.key == null ? null : Buffer.from(input.key, 'utf8');
  const value = input.value === null ? null : Buffer.from(JSON.stringify(input.value), 'utf8');
  return input.headers === undefined ? { key, value } : { key, value, headers: input.headers };
}

export function offsetsBody(positions: readonly RecordPosition[]): string {
  let out = '{"offsets":[';
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    out += `${i === 0 ? '' : ','}{"partition":${p.partition},"offset":${p.offset}}`;
  }
  return out + ']}';
}

/** Offsets of a batch appended to one partition: consecutive from `baseOffset`. */
export function consecutiveOffsetsBody(partition: number, baseOffset: number, count: number): string {
  let out = '{"offsets":[';
  for (let i = 0; i < count; i++) {
    out += `${i === 0 ? '' : ','}{"partition":${partition},"offset":${baseOffset + i}}`;
  }
  return out + ']}';
}

export function readResultBody(result: ReadResult): string {
  let out = '{"records":[';
  const records = result.records;
  for (let i = 0; i < records.length; i++) {
    if (i > 0) out += ',';
    out += recordJson(records[i]!);
  }
  return `${out}],"next_offset":${result.nextOffset},"high_watermark":${result.highWatermark},"low_watermark":${result.lowWatermark}}`;
}

/** One record as the text of a JSON object; shared by HTTP fetch and WebSocket pushes. */
export function recordJson(r: StoredRecord): string {
  const key = r.key === null ? 'null' : JSON.stringify(utf8(r.key));
  return `{"offset":${r.offset},"key":${key},"value":${valueJson(r.value)},"headers":${JSON.stringify(r.headers)},"timestamp":${r.timestamp}}`;
}

function valueJson(value: Uint8Array | null): string {
  if (value === null) return 'null';
  const text = utf8(value);
  try {
    JSON.parse(text);
    // JSON.parse accepts exactly the JSON grammar, so the text can be spliced in as it is.
    return text;
  } catch {
    // Not JSON (written by something other than this API): returned as a string, by contract.
    return JSON.stringify(text);
  }
}

function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
