import { topicToken } from '../../engine/jetstream/names.js';
import type { Delivered } from './receipts.js';

/**
 * The JetStream objects of one native queue (docs/queues.md, "JetStream-native backend").
 *
 * Stream names use `<prefix>__q_` (two underscores): the engine's partition streams are
 * `<prefix>_<topic token>_<p>` and a topic token never starts with a bare `_q`, so no queue can
 * collide with a topic. Subjects start with `<prefix>__q`, outside the engine's `<prefix>.>`.
 */
export interface QueueNames {
  readonly stream: string;
  readonly subject: string;
  readonly dlqStream: string;
  readonly dlqSubject: string;
}

/** The one durable pull consumer every Brook node shares. */
export const QUEUE_CONSUMER = 'brook';

export function queueNames(prefix: string, queue: string): QueueNames {
  const token = topicToken(queue);
  return {
    stream: `${prefix}__q_${token}`,
    subject: `${prefix}__q.${token}`,
    dlqStream: `${prefix}__qdlq_${token}`,
    dlqSubject: `${prefix}__qdlq.${token}`,
  };
}

/** Subjects of every queue stream of a prefix (for listing). */
export const allQueueSubjects = (prefix: string): string => `${prefix}__q.>`;

/** Every node subscribes with this queue group, so each max-deliveries advisory reaches one node. */
export const advisoryGroup = (prefix: string): string => `${prefix}_qdlq`;

/** The max-deliveries advisory of one queue stream; its DLQ stream captures it, so none is lost while no node runs. */
export const maxDeliveriesAdvisory = (stream: string): string => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${QUEUE_CONSUMER}`;

/** The durable push consumer on each DLQ stream that delivers its captured advisories. */
export const ADVISORY_CONSUMER = 'brook-advisories';

/** Where every queue's advisory consumer delivers; each node subscribes with `advisoryGroup`. */
export const advisoryDeliverSubject = (prefix: string): string => `${prefix}__qadv.deliver`;

/** Holds the per-prefix HMAC key that signs receipts (one key, created by the first node). */
export const receiptKeyBucket = (prefix: string): string => `${prefix}__qkey`;

/** Lease deadlines moved by extend, so a receipt stays valid past the deadline it carries. */
export const leaseExtensionBucket = (prefix: string): string => `${prefix}__qlease`;

export const ackSubject = (stream: string, r: Delivered): string =>
  `$JS.ACK.${stream}.${QUEUE_CONSUMER}.${r.deliveries}.${r.streamSeq}.${r.consumerSeq}.0.0`;

/** Parses `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>` (also the 12-token domain form). */
export function deliveredFromAckSubject(subject: string): Delivered | null {
  const t = subject.split('.');
  const n = t.length;
  if (n !== 9 && n < 12) return null;
  const base = n === 9 ? 4 : 6;
  const deliveries = Number(t[base]);
  const streamSeq = Number(t[base + 1]);
  const consumerSeq = Number(t[base + 2]);
  if (![deliveries, streamSeq, consumerSeq].every(Number.isSafeInteger)) return null;
  return { streamSeq, deliveries, consumerSeq };
}
