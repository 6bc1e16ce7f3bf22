/**
 * Validates an enqueued message's options and turns them into the journal's meta (codec.ts).
 * Pure: the queue passes its clock reading and default TTL.
 */
import { InvalidArgumentError, MessageTooLargeError } from '../engine/index.js';
import type { EnqueueMeta } from './codec.js';
import { MAX_DEDUP_ID_LENGTH, MAX_DELAY_MS, MAX_KEY_LENGTH, MAX_MESSAGE_BYTES, MAX_PRIORITY } from './config.js';
import type { EnqueueMessage } from './types.js';

/** Shared by every message without options (most of them). */
export const NO_META: EnqueueMeta = Object.freeze({});

export function enqueueMeta(m: EnqueueMessage, now: number, defaultTtlMs: number | null): EnqueueMeta {
  if (m.value.length > MAX_MESSAGE_BYTES) throw new MessageTooLargeError('record', m.value.length, MAX_MESSAGE_BYTES);
  if (
    m.delayMs === undefined &&
    m.deadline === undefined &&
    m.priority === undefined &&
    m.key === undefined &&
    m.dedupId === undefined &&
    m.ttlMs === undefined &&
    defaultTtlMs === null
  ) {
    return NO_META;
  }
  const meta: EnqueueMeta = {};
  if (m.delayMs !== undefined) {
    if (!Number.isSafeInteger(m.delayMs) || m.delayMs < 0 || m.delayMs > MAX_DELAY_MS) {
      throw new InvalidArgumentError(`delay_ms must be an integer in [0, ${MAX_DELAY_MS}], got ${m.delayMs}`);
    }
    if (m.delayMs > 0) meta.r = now + m.delayMs;
  }
  if (m.deadline !== undefined) {
    if (!Number.isSafeInteger(m.deadline) || m.deadline <= now) {
      throw new InvalidArgumentError(`deadline must be a future epoch millisecond time, got ${m.deadline} (now ${now})`);
    }
    meta.d = m.deadline;
  }
  if (m.priority !== undefined) {
    if (!Number.isSafeInteger(m.priority) || m.priority < 0 || m.priority > MAX_PRIORITY) {
      throw new InvalidArgumentError(`priority must be an integer in [0, ${MAX_PRIORITY}], got ${m.priority}`);
    }
    if (m.priority > 0) meta.p = m.priority;
  }
  if (m.key !== undefined) {
    if (m.key.length === 0 || m.key.length > MAX_KEY_LENGTH) throw new InvalidArgumentError(`key must be 1-${MAX_KEY_LENGTH} characters`);
    meta.k = m.key;
  }
  if (m.dedupId !== undefined) {
    if (m.dedupId.length === 0 || m.dedupId.length > MAX_DEDUP_ID_LENGTH) {
      throw new InvalidArgumentError(`dedup_id must be 1-${MAX_DEDUP_ID_LENGTH} characters`);
    }
    meta.u = m.dedupId;
  }
  const ttl = m.ttlMs ?? defaultTtlMs;
  if (ttl !== null) {
    if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > MAX_DELAY_MS) {
      throw new InvalidArgumentError(`ttl_ms must be an integer in [1, ${MAX_DELAY_MS}], got ${ttl}`);
    }
    meta.x = now + ttl;
  }
  return meta;
}
