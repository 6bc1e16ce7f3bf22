import { topicToken } from '../../engine/jetstream/names.js';

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

/**
 * A receipt is `<stream seq>.<delivery count>.<consumer seq>.<delivered at, epoch ms base 36>`:
 * with the queue (every call names it) the first three rebuild the JetStream ack subject, so any
 * node can settle it; the last gives the processing time for the metrics. The timestamp and
 * pending tokens of the ack subject are informational to the server and sent as 0.
 */
export interface Receipt {
  readonly streamSeq: number;
  readonly deliveries: number;
  readonly consumerSeq: number;
  /** Epoch ms of the delivery (0 when unknown). */
  readonly deliveredAt: number;
}

const RECEIPT = /^(\d{1,16})\.(\d{1,6})\.(\d{1,16})\.([0-9a-z]{1,10})$/;

export function parseReceipt(receipt: string): Receipt | null {
  const m = RECEIPT.exec(receipt);
  if (!m) return null;
  return { streamSeq: Number(m[1]), deliveries: Number(m[2]), consumerSeq: Number(m[3]), deliveredAt: parseInt(m[4]!, 36) };
}

export const formatReceipt = (r: Receipt): string => `${r.streamSeq}.${r.deliveries}.${r.consumerSeq}.${Math.max(0, Math.floor(r.deliveredAt)).toString(36)}`;

export const ackSubject = (stream: string, r: Receipt): string =>
  `$JS.ACK.${stream}.${QUEUE_CONSUMER}.${r.deliveries}.${r.streamSeq}.${r.consumerSeq}.0.0`;

/** Parses `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<cseq>.<ts>.<pending>` (also the 12-token domain form). */
export function receiptFromAckSubject(subject: string): Receipt | null {
  const t = subject.split('.');
  const n = t.length;
  if (n !== 9 && n < 12) return null;
  const base = n === 9 ? 4 : 6;
  const deliveries = Number(t[base]);
  const streamSeq = Number(t[base + 1]);
  const consumerSeq = Number(t[base + 2]);
  if (![deliveries, streamSeq, consumerSeq].every(Number.isSafeInteger)) return null;
  return { streamSeq, deliveries, consumerSeq, deliveredAt: 0 };
}
