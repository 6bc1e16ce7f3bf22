/**
 * The queue shapes shared by the HTTP API and the WebSocket protocol: snake_case on the wire,
 * values as JSON documents stored as their text and spliced back into answers without a parse.
 */
import type { DeadLetter, Delivery, EnqueueMessage } from './types.js';

/** An enqueued message as the HTTP body and the `enqueue` frame carry it (already validated). */
export interface WireEnqueueMessage {
  readonly value?: unknown;
  readonly delay_ms?: number | undefined;
  readonly deadline?: number | undefined;
  readonly priority?: number | undefined;
  readonly dedup_id?: string | undefined;
  readonly key?: string | undefined;
  readonly ttl_ms?: number | undefined;
}

export function enqueueMessageFromWire(m: WireEnqueueMessage): EnqueueMessage {
  const out: { -readonly [K in keyof EnqueueMessage]: EnqueueMessage[K] } = { value: Buffer.from(JSON.stringify(m.value ?? null)) };
  if (m.delay_ms !== undefined) out.delayMs = m.delay_ms;
  if (m.deadline !== undefined) out.deadline = m.deadline;
  if (m.priority !== undefined) out.priority = m.priority;
  if (m.dedup_id !== undefined) out.dedupId = m.dedup_id;
  if (m.key !== undefined) out.key = m.key;
  if (m.ttl_ms !== undefined) out.ttlMs = m.ttl_ms;
  return out;
}

/** Deliveries as one JSON array, serialized by hand so each stored value goes in as is. */
export function deliveriesJson(got: readonly Delivery[]): string {
  let body = '[';
  for (let i = 0; i < got.length; i++) {
    const d = got[i]!;
    if (i > 0) body += ',';
    body +=
      `{"id":"${d.id}","receipt":"${d.receipt}","deliveries":${d.deliveries},"value":${utf8(d.value)}` +
      `,"key":${d.key === null ? 'null' : JSON.stringify(d.key)},"enqueued_at":${d.enqueuedAt}` +
      `,"deadline":${d.deadline ?? 'null'},"priority":${d.priority},"lease_expires_at":${d.leaseExpiresAt}}`;
  }
  return body + ']';
}

export function deadLetterJson(d: DeadLetter): string {
  return (
    `{"id":"${d.id}","value":${utf8(d.value)},"deliveries":${d.deliveries},"last_error":${JSON.stringify(d.lastError)}` +
    `,"dead_lettered_at":${d.deadLetteredAt},"reason":"${d.reason}","enqueued_at":${d.enqueuedAt}` +
    `,"key":${d.key === null ? 'null' : JSON.stringify(d.key)},"deadline":${d.deadline ?? 'null'},"priority":${d.priority}}`
  );
}

function utf8(value: Uint8Array): string {
  return value.length === 0 ? 'null' : Buffer.from(value.buffer, value.byteOffset, value.length).toString('utf8');
}
