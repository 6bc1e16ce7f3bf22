/**
 * Work queues: the types of the public surface (docs/queues.md). A queue hands each message to
 * one worker at a time under a lease; acknowledged messages are gone, failed ones come back with
 * backoff until `maxDeliveries`, then move to the queue's dead-letter queue.
 */

/** How ready messages are spread over workers. `key-sticky` also keeps per-key order. */
export type BalanceMode = 'round-robin' | 'least-loaded' | 'key-sticky';

/** What an enqueue does when the queue holds `maxDepth` messages or `maxBytes` bytes. */
export type OverflowPolicy = 'reject' | 'drop_oldest';

export interface BackoffConfig {
  /** First retry waits up to this long. @defaultValue 1_000 */
  readonly baseMs: number;
  /** No retry waits longer than this. @defaultValue 60_000 */
  readonly capMs: number;
}

export interface QueueConfig {
  /** Deliveries after which a failing message is dead-lettered. @defaultValue 5 */
  readonly maxDeliveries: number;
  /** Backoff after a nack without delay or an expired lease: full jitter, `random(0, min(cap, base·2^(n−1)))`. */
  readonly backoff: BackoffConfig;
  /** @defaultValue 'round-robin' */
  readonly balance: BalanceMode;
  /** Messages held (ready + delayed + in flight); past it `overflow` applies. @defaultValue 1_000_000 */
  readonly maxDepth: number;
  /** Payload bytes held (the values are kept in memory); past it `overflow` applies. @defaultValue 256 MiB */
  readonly maxBytes: number;
  /** @defaultValue 'reject' */
  readonly overflow: OverflowPolicy;
  /** A second enqueue with the same `dedupId` within this window returns the first id. @defaultValue 300_000 */
  readonly dedupWindowMs: number;
  /** Messages one worker may hold at once; receives past it return fewer. @defaultValue 10_000 */
  readonly maxInFlightPerWorker: number;
  /** Lease length when a receive names none. @defaultValue 30_000 */
  readonly visibilityMs: number;
  /** TTL for messages that carry none; null keeps them until handled. @defaultValue null */
  readonly defaultTtlMs: number | null;
  /** Dead letters kept; past it the oldest is discarded (and counted). @defaultValue 100_000 */
  readonly maxDeadLetters: number;
}

export type QueueConfigInput = Partial<Omit<QueueConfig, 'backoff'>> & { readonly backoff?: Partial<BackoffConfig> };

export interface EnqueueMessage {
  readonly value: Uint8Array;
  /** Deliver no earlier than `delayMs` from now. */
  readonly delayMs?: number;
  /** Epoch ms: delivered earliest-deadline-first, dead-lettered (DEADLINE_EXCEEDED) once past. */
  readonly deadline?: number;
  /** Higher first among messages with the same deadline (0..9). @defaultValue 0 */
  readonly priority?: number;
  /** Accepted once per queue within `dedupWindowMs`. */
  readonly dedupId?: string;
  /** Messages with one key are delivered one at a time, in order, under `key-sticky`. */
  readonly key?: string;
  /** Dead-lettered (EXPIRED) when not acknowledged within this long of the enqueue. */
  readonly ttlMs?: number;
}

export interface ReceiveOptions {
  /** @defaultValue 10 */
  readonly max?: number;
  /** Lease length. @defaultValue the queue's visibilityMs */
  readonly visibilityMs?: number;
  /** Counted against `maxInFlightPerWorker`; anonymous receivers share one budget. */
  readonly worker?: string;
}

export interface Delivery {
  readonly id: string;
  /** Names this delivery: ack/nack/extend/reject take it; a receipt of an earlier delivery is refused. */
  readonly receipt: string;
  /** 1 on the first delivery. */
  readonly deliveries: number;
  readonly value: Uint8Array;
  readonly key: string | null;
  readonly enqueuedAt: number;
  readonly deadline: number | null;
  readonly priority: number;
  readonly leaseExpiresAt: number;
}

export type DeadLetterReason = 'MAX_DELIVERIES' | 'REJECTED' | 'DEADLINE_EXCEEDED' | 'EXPIRED' | 'DROPPED';

export interface DeadLetter {
  /** The original message id. */
  readonly id: string;
  readonly value: Uint8Array;
  readonly key: string | null;
  readonly deliveries: number;
  readonly reason: DeadLetterReason;
  readonly lastError: string | null;
  readonly enqueuedAt: number;
  readonly deadLetteredAt: number;
  readonly deadline: number | null;
  readonly priority: number;
}

/** Which dead letters a redrive or delete takes. */
export type DeadLetterSelection =
  | { readonly all: true }
  | { readonly ids: readonly string[] }
  | { readonly olderThanMs: number };

export interface QueueStats {
  readonly name: string;
  readonly config: QueueConfig;
  readonly depth: number;
  /** Payload bytes of the messages held. */
  readonly bytes: number;
  readonly ready: number;
  readonly inFlight: number;
  readonly delayed: number;
  readonly deadLetters: number;
  /** Age of the oldest message held (ready, delayed or in flight); 0 when empty. */
  readonly oldestAgeMs: number;
  readonly deliveries: number;
  readonly redeliveries: number;
  readonly acked: number;
  readonly deadLettered: number;
}

/** Per-item outcome of ack/nack/extend/reject: ok, or why that receipt was refused. */
export type ReceiptResult = { readonly receipt: string; readonly ok: true } | { readonly receipt: string; readonly ok: false; readonly code: 'UNKNOWN_RECEIPT'; readonly message: string };
