/**
 * Journal and dead-letter record formats. One engine record per event; the key's first byte is
 * the event type, the rest of the key is JSON metadata where the event has any, and the value is
 * the message payload (E, C, D) or a JSON list (L, A, K, N, X):
 *
 * ```
 * journal  E  enqueue          key "E" [+ meta]      value payload       id = the record's offset
 *          C  carry forward    key "C" + snapshot    value payload       (full state of a live message)
 *          L  delivered        key "L"               value [id, ...]     delivery count + 1 each
 *          A  acknowledged     key "A"               value [id, ...]
 *          N  released         key "N"               value [[id, ready_at, last_error|null], ...]
 *          K  dead-lettered    key "K"               value [id, ...]     (after its D is durable)
 * dlq      D  dead letter      key "D" + meta        value payload
 *          X  removed          key "X"               value [id, ...]     (deleted or redriven)
 * ```
 */
import type { DeadLetterReason } from './types.js';

export const enum Tag {
  Enqueue = 0x45, // E
  Carry = 0x43, // C
  Delivered = 0x4c, // L
  Acked = 0x41, // A
  Released = 0x4e, // N
  Killed = 0x4b, // K
  Dead = 0x44, // D
  Removed = 0x58, // X
}

/** Optional per-message fields, absent when default (most messages carry none). */
export interface EnqueueMeta {
  /** ready at (epoch ms) */
  r?: number;
  /** deadline */
  d?: number;
  /** priority */
  p?: number;
  /** key */
  k?: string;
  /** dedup id */
  u?: string;
  /** expires at */
  x?: number;
}

export interface CarryMeta extends EnqueueMeta {
  /** id */
  i: number;
  /** deliveries */
  n: number;
  /** enqueued at */
  t: number;
  /** last error */
  e?: string;
  /** was in flight (its delivery counted; ready again after a restart) */
  f?: 1;
}

export interface DeadMeta {
  i: number;
  n: number;
  t: number;
  /** dead-lettered at */
  a: number;
  /** reason */
  w: DeadLetterReason;
  e?: string;
  d?: number;
  p?: number;
  k?: string;
}

const BARE = new Map<number, Buffer>();
/** The one-byte key of an event without metadata, shared by every record of that type. */
export function bareKey(tag: Tag): Buffer {
  let key = BARE.get(tag);
  if (!key) BARE.set(tag, (key = Buffer.from([tag])));
  return key;
}

export function metaKey(tag: Tag, meta: object): Buffer {
  return Buffer.from(String.fromCharCode(tag) + JSON.stringify(meta));
}

export function tagOf(key: Uint8Array | null): number {
  return key === null || key.length === 0 ? -1 : key[0]!;
}

export function metaOf<T>(key: Uint8Array): T | null {
  if (key.length <= 1) return null;
  return JSON.parse(Buffer.from(key.buffer, key.byteOffset + 1, key.length - 1).toString('utf8')) as T;
}

export function jsonValue(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

export function parseJsonValue<T>(value: Uint8Array | null): T {
  if (value === null) throw new Error('journal record without a value');
  return JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.length).toString('utf8')) as T;
}
