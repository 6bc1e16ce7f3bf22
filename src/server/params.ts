/** Parsers for path and query parameters: strict digits only, so "1e3", "0x10", "1.0" and "-1" are refused. */
import { assertValidTopicName, isInternalTopic } from '../engine/index.js';
import { HttpError } from './errors.js';

const DIGITS = /^\d{1,20}$/;

/**
 * A non-negative integer written in plain digits. Returns `Infinity` for digit strings beyond
 * Number.MAX_SAFE_INTEGER, so a caller can tell "too big" (maybe out of range) from "malformed".
 */
export function parseNonNegativeInt(name: string, raw: string): number {
  if (!DIGITS.test(raw)) {
    if (/^\d+$/.test(raw)) return Number.POSITIVE_INFINITY;
    throw new HttpError('INVALID_REQUEST', `${name} must be a non-negative integer, got ${JSON.stringify(raw.slice(0, 40))}`);
  }
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : Number.POSITIVE_INFINITY;
}

/** An optional bounded integer query parameter: absent → `fallback`; above `max` → capped. */
export function intQuery(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const value = parseNonNegativeInt(name, raw);
  if (value < min) throw new HttpError('INVALID_REQUEST', `${name} must be at least ${min}, got ${value}`);
  return Math.min(value, max);
}

/** Topic names in paths: checked up front so every route answers INVALID_TOPIC_NAME alike. */
export function topicParam(name: string): string {
  assertValidTopicName(name);
  return name;
}

/** Topics starting with `__` belong to Brook: readable, but not writable over HTTP. */
export function writableTopicParam(name: string): string {
  topicParam(name);
  if (isInternalTopic(name)) {
    throw new HttpError('INVALID_TOPIC_NAME', `topic names starting with "__" are reserved for Brook`);
  }
  return name;
}
