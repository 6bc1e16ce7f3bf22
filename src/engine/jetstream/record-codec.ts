import { headers as natsHeaders, type Msg, type MsgHdrs } from 'nats';
import type { ProduceRecord, RecordHeaders, StoredRecord } from '../types.js';

/**
 * One Brook record is one NATS message. The value is the payload, untouched, so any NATS client
 * can read the stream; the rest travels in headers:
 *
 * ```
 *  Brook-Key: <base64 of the key>        absent when the key is null
 *  Brook-Null: 1                          the value is null (a tombstone), the payload is empty
 *  Brook-Headers: {"name":"value",...}    the record's headers as JSON, absent when there are none
 *  Nats-Msg-Id: <producer>:<p>:<seq>      idempotent producers only (JetStream deduplicates it);
 *                                         the producer id URI-encoded (header values are trimmed)
 * ```
 *
 * A record with none of these is a plain PUB without a header block, which is cheaper to send,
 * parse and store (most records: a value and nothing else).
 *
 * Record headers go into one JSON header because Brook header names are any string (NATS header
 * names are case-insensitive ASCII tokens) and JSON never contains a raw CR or LF.
 */

export const KEY_HEADER = 'Brook-Key';
export const NULL_HEADER = 'Brook-Null';
export const HEADERS_HEADER = 'Brook-Headers';
export const MSG_ID_HEADER = 'Nats-Msg-Id';

export { recordSize } from '../record-size.js';

export interface EncodedRecord {
  readonly data: Uint8Array;
  /** Undefined for a plain record (no key, headers or message id): sent as a header-less PUB. */
  readonly headers: MsgHdrs | undefined;
  /** Payload plus encoded headers: what counts against the server's `max_payload`. */
  readonly wireBytes: number;
}

export function encodeRecord(record: ProduceRecord, msgId: string | null): EncodedRecord {
  const data = record.value ?? EMPTY;
  // Most records are a value and nothing else: no header block to build (checked first because
  // this runs once per record on the append path).
  if (record.key == null && record.value !== null && msgId === null && !hasHeaders(record.headers)) {
    return { data, headers: undefined, wireBytes: data.length };
  }
  const h = natsHeaders();
  let headerBytes = 12; // "NATS/1.0\r\n" ... "\r\n"
  const set = (name: string, value: string): void => {
    h.set(name, value);
    headerBytes += name.length + Buffer.byteLength(value) + 4;
  };
  if (record.key != null) set(KEY_HEADER, Buffer.from(record.key.buffer, record.key.byteOffset, record.key.byteLength).toString('base64'));
  if (record.value === null) set(NULL_HEADER, '1');
  if (hasHeaders(record.headers)) set(HEADERS_HEADER, JSON.stringify(record.headers));
  if (msgId !== null) set(MSG_ID_HEADER, msgId);
  return { data, headers: h, wireBytes: data.length + headerBytes };
}

function hasHeaders(headers: RecordHeaders | undefined): headers is RecordHeaders {
  if (headers === undefined) return false;
  for (const _ in headers) return true;
  return false;
}

const EMPTY = new Uint8Array(0);

/** Where a message delivered by a consumer sits in its stream, from its `$JS.ACK` reply subject. */
export interface DeliveryInfo {
  readonly streamSequence: number;
  /** Milliseconds since the epoch (JetStream stores nanoseconds). */
  readonly timestamp: number;
}

/**
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (9 tokens), or with
 * `<domain>.<account hash>` after `ACK` and a random token at the end (12 tokens, server 2.10+).
 */
export function parseDelivery(reply: string | undefined): DeliveryInfo | null {
  if (!reply?.startsWith('$JS.ACK.')) return null;
  const t = reply.split('.');
  const base = t.length === 9 ? 2 : t.length >= 12 ? 4 : -1;
  if (base < 0) return null;
  const streamSequence = Number(t[base + 3]);
  const ns = t[base + 5] ?? '';
  const timestamp = ns.length > 6 ? Number(ns.slice(0, -6)) : 0;
  if (!Number.isSafeInteger(streamSequence) || !Number.isSafeInteger(timestamp)) return null;
  return { streamSequence, timestamp };
}

export function isTombstone(msg: Msg): boolean {
  return msg.headers?.has(NULL_HEADER) ?? false;
}

export function decodeRecord(msg: Msg, delivery: DeliveryInfo): StoredRecord {
  const h = msg.headers;
  const keyHeader = h?.has(KEY_HEADER) ? h.get(KEY_HEADER) : null;
  return {
    offset: delivery.streamSequence - 1,
    timestamp: delivery.timestamp,
    key: keyHeader === null ? null : Buffer.from(keyHeader, 'base64'),
    value: h?.has(NULL_HEADER) ? null : msg.data,
    headers: decodeHeaders(h),
  };
}

const NO_HEADERS: RecordHeaders = Object.freeze({});

/**
 * Brook's own JSON header when present; otherwise the message's NATS headers minus the `Nats-`
 * and `Brook-` ones, so messages published into a partition by plain NATS clients read sensibly.
 */
function decodeHeaders(h: MsgHdrs | undefined): RecordHeaders {
  if (!h) return NO_HEADERS;
  if (h.has(HEADERS_HEADER)) {
    try {
      const parsed: unknown = JSON.parse(h.get(HEADERS_HEADER));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as RecordHeaders;
    } catch {
      // Not written by Brook (it always writes valid JSON): fall through to the NATS headers.
    }
  }
  let out: Record<string, string> | null = null;
  for (const name of h.keys()) {
    const lower = name.toLowerCase();
    if (lower.startsWith('nats-') || lower.startsWith('brook-')) continue;
    (out ??= {})[name] = h.get(name);
  }
  return out ?? NO_HEADERS;
}
