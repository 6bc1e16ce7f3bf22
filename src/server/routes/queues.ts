/**
 * Work queues over HTTP (docs/http-api.md, "Queues"). Permissions use the topic patterns of the
 * caller's token with the queue name in place of a topic: `write` to enqueue; `read` to receive,
 * settle (ack/nack/extend/reject), describe and list dead letters; admin to configure, delete and
 * redrive or delete dead letters.
 *
 * Values are JSON documents: stored as their JSON text, and spliced back into responses as is.
 */
import { z } from 'zod';
import {
  assertValidQueueName,
  deadLetterJson,
  deliveriesJson,
  enqueueMessageFromWire,
  MAX_PRIORITY,
  MAX_RECEIVE,
  MAX_VISIBILITY_MS,
  type DeadLetterSelection,
  type QueueConfig,
  type QueueConfigInput,
  type QueueStats,
} from '../../queues/index.js';
import { authorize, can, requireAdmin } from '../auth/index.js';
import { declaredLength } from '../body.js';
import { MAX_WAIT_MS } from '../defaults.js';
import { HttpError } from '../errors.js';
import { intQuery } from '../params.js';
import { json, NO_CONTENT, rawJson } from '../reply.js';
import { validate, type RequestContext } from '../request-context.js';
import type { Router } from '../router.js';
import type { RouteDeps } from './deps.js';

const enqueueEnvelope = z.strictObject({ messages: z.array(z.unknown()) });
const messageSchema = z.strictObject({
  value: z.unknown(),
  delay_ms: z.int().nonnegative().optional(),
  deadline: z.int().positive().optional(),
  priority: z.int().min(0).max(MAX_PRIORITY).optional(),
  dedup_id: z.string().min(1).max(128).optional(),
  key: z.string().min(1).max(256).optional(),
  ttl_ms: z.int().positive().optional(),
});
const messagesSchema = z.array(messageSchema);

const receiveSchema = z.strictObject({
  max: z.int().min(1).max(MAX_RECEIVE).optional(),
  visibility_ms: z.int().min(1).max(MAX_VISIBILITY_MS).optional(),
  wait_ms: z.int().min(0).max(MAX_WAIT_MS).optional(),
  /** Counted against the queue's max_in_flight_per_worker. */
  worker: z.string().min(1).max(128).optional(),
});

const receipts = z.array(z.string().max(64)).min(1).max(MAX_RECEIVE);
const ackSchema = z.strictObject({ receipts });
const nackSchema = z.strictObject({ receipts, delay_ms: z.int().nonnegative().optional(), error: z.string().max(2048).optional() });
const extendSchema = z.strictObject({ receipts, visibility_ms: z.int().min(1).max(MAX_VISIBILITY_MS).optional() });
const rejectSchema = z.strictObject({ receipts, error: z.string().max(2048).optional() });

const configSchema = z.strictObject({
  max_deliveries: z.int().positive().optional(),
  backoff: z.strictObject({ base_ms: z.int().positive().optional(), cap_ms: z.int().positive().optional() }).optional(),
  balance: z.enum(['round-robin', 'least-loaded', 'key-sticky']).optional(),
  max_depth: z.int().positive().optional(),
  max_bytes: z.int().positive().optional(),
  overflow: z.enum(['reject', 'drop_oldest']).optional(),
  dedup_window_ms: z.int().positive().optional(),
  max_in_flight_per_worker: z.int().positive().optional(),
  visibility_ms: z.int().positive().optional(),
  default_ttl_ms: z.int().positive().nullable().optional(),
  max_dead_letters: z.int().positive().optional(),
});

const selectionSchema = z.union([
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ ids: z.array(z.string().regex(/^\d{1,16}$/)).min(1).max(10_000) }),
  z.strictObject({ older_than_ms: z.int().nonnegative() }),
]);

const MAX_DEAD_LETTER_PAGE = 1_000;

export function queueRoutes(router: Router, deps: RouteDeps): void {
  const { queues } = deps;
  const name = (ctx: RequestContext): string => {
    const queue = ctx.param('queue');
    assertValidQueueName(queue);
    return queue;
  };

  router.add('GET', '/v1/queues', async (ctx) => {
    const all = await queues.list();
    return json(200, { queues: all.filter((q) => can(ctx.principal, 'read', q.name)).map(statsWire) });
  });

  router.add('PUT', '/v1/queues/:queue', async (ctx) => {
    const queue = name(ctx);
    requireAdmin(ctx.principal, 'configuring queues');
    const body = await ctx.body(configSchema);
    await queues.configure(queue, configInput(body));
    return json(200, statsWire(await queues.describe(queue)));
  });

  router.add('GET', '/v1/queues/:queue', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    return json(200, statsWire(await queues.describe(queue)));
  });

  router.add('DELETE', '/v1/queues/:queue', async (ctx) => {
    const queue = name(ctx);
    requireAdmin(ctx.principal, 'deleting queues');
    await queues.deleteQueue(queue);
    return NO_CONTENT;
  });

  router.add('POST', '/v1/queues/:queue/messages', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'write', queue);
    deps.quotas.assertNotExhausted(ctx.principal, ctx.address);
    const release = deps.inFlight.acquire(Math.min(declaredLength(ctx.req) ?? deps.maxBodyBytes, deps.maxBodyBytes));
    try {
      const body = await ctx.body(enqueueEnvelope);
      if (body.messages.length === 0) throw new HttpError('INVALID_REQUEST', 'messages must hold at least one message');
      if (body.messages.length > deps.maxBatchRecords) {
        throw new HttpError('MESSAGE_TOO_LARGE', `batch of ${body.messages.length} messages exceeds the limit of ${deps.maxBatchRecords}`);
      }
      const parsed = validate(messagesSchema, body.messages, 'body.messages');
      let bytes = 0;
      const messages = parsed.map((m, i) => {
        if (m.value === undefined) throw new HttpError('INVALID_REQUEST', `body.messages.${i}.value: required`);
        const msg = enqueueMessageFromWire(m);
        bytes += msg.value.length;
        return msg;
      });
      deps.quotas.take(ctx.principal, ctx.address, messages.length, bytes);
      const ids = await queues.enqueue(queue, messages);
      return rawJson(200, `{"ids":${JSON.stringify(ids)}}`);
    } finally {
      release();
    }
  });

  router.add('POST', '/v1/queues/:queue/receive', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const body = await ctx.body(receiveSchema);
    const options: { max?: number; visibilityMs?: number; worker?: string } = {};
    if (body.max !== undefined) options.max = body.max;
    if (body.visibility_ms !== undefined) options.visibilityMs = body.visibility_ms;
    if (body.worker !== undefined) options.worker = body.worker;
    const waitMs = deps.isClosing() ? 0 : (body.wait_ms ?? 0);
    const got = await queues.receive(queue, options, waitMs, waitMs > 0 ? ctx.signal : undefined);
    return rawJson(200, `{"messages":${deliveriesJson(got)}}`);
  });

  router.add('POST', '/v1/queues/:queue/ack', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const body = await ctx.body(ackSchema);
    await queues.ack(queue, body.receipts);
    return NO_CONTENT;
  });

  router.add('POST', '/v1/queues/:queue/nack', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const body = await ctx.body(nackSchema);
    await queues.nack(queue, body.receipts, body.delay_ms, body.error);
    return NO_CONTENT;
  });

  router.add('POST', '/v1/queues/:queue/extend', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const body = await ctx.body(extendSchema);
    await queues.extend(queue, body.receipts, body.visibility_ms);
    return NO_CONTENT;
  });

  router.add('POST', '/v1/queues/:queue/reject', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const body = await ctx.body(rejectSchema);
    await queues.reject(queue, body.receipts, body.error);
    return NO_CONTENT;
  });

  router.add('GET', '/v1/queues/:queue/dead-letters', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const limit = intQuery(ctx.query, 'limit', 100, 1, MAX_DEAD_LETTER_PAGE);
    const after = ctx.query.get('after') ?? undefined;
    if (after !== undefined && !/^\d{1,16}$/.test(after)) throw new HttpError('INVALID_REQUEST', 'after must be a message id');
    const letters = await queues.deadLetters(queue, limit, after);
    return rawJson(200, `{"messages":[${letters.map(deadLetterJson).join(',')}]}`);
  });

  router.add('GET', '/v1/queues/:queue/dead-letters/:id', async (ctx) => {
    const queue = name(ctx);
    authorize(ctx.principal, 'read', queue);
    const letter = await queues.deadLetter(queue, ctx.param('id'));
    if (!letter) throw new HttpError('NOT_FOUND', `queue ${JSON.stringify(queue)} has no dead letter ${JSON.stringify(ctx.param('id').slice(0, 40))}`);
    return rawJson(200, deadLetterJson(letter));
  });

  router.add('POST', '/v1/queues/:queue/dead-letters/redrive', async (ctx) => {
    const queue = name(ctx);
    requireAdmin(ctx.principal, 'redriving dead letters');
    const selection = toSelection(await ctx.body(selectionSchema));
    const ids = await queues.redrive(queue, selection);
    return json(200, { ids });
  });

  router.add('POST', '/v1/queues/:queue/dead-letters/delete', async (ctx) => {
    const queue = name(ctx);
    requireAdmin(ctx.principal, 'deleting dead letters');
    const selection = toSelection(await ctx.body(selectionSchema));
    return json(200, { deleted: await queues.deleteDeadLetters(queue, selection) });
  });
}

function toSelection(body: z.infer<typeof selectionSchema>): DeadLetterSelection {
  if ('all' in body) return { all: true };
  if ('ids' in body) return { ids: body.ids };
  return { olderThanMs: body.older_than_ms };
}

function configInput(body: z.infer<typeof configSchema>): QueueConfigInput {
  const out: { -readonly [K in keyof QueueConfigInput]: QueueConfigInput[K] } = {};
  if (body.max_deliveries !== undefined) out.maxDeliveries = body.max_deliveries;
  if (body.backoff !== undefined) {
    const backoff: { baseMs?: number; capMs?: number } = {};
    if (body.backoff.base_ms !== undefined) backoff.baseMs = body.backoff.base_ms;
    if (body.backoff.cap_ms !== undefined) backoff.capMs = body.backoff.cap_ms;
    out.backoff = backoff;
  }
  if (body.balance !== undefined) out.balance = body.balance;
  if (body.max_depth !== undefined) out.maxDepth = body.max_depth;
  if (body.max_bytes !== undefined) out.maxBytes = body.max_bytes;
  if (body.overflow !== undefined) out.overflow = body.overflow;
  if (body.dedup_window_ms !== undefined) out.dedupWindowMs = body.dedup_window_ms;
  if (body.max_in_flight_per_worker !== undefined) out.maxInFlightPerWorker = body.max_in_flight_per_worker;
  if (body.visibility_ms !== undefined) out.visibilityMs = body.visibility_ms;
  if (body.default_ttl_ms !== undefined) out.defaultTtlMs = body.default_ttl_ms;
  if (body.max_dead_letters !== undefined) out.maxDeadLetters = body.max_dead_letters;
  return out;
}

/** The queue's description in the API's snake_case. */
export function configWire(c: QueueConfig): Record<string, unknown> {
  return {
    max_deliveries: c.maxDeliveries,
    backoff: { base_ms: c.backoff.baseMs, cap_ms: c.backoff.capMs },
    balance: c.balance,
    max_depth: c.maxDepth,
    max_bytes: c.maxBytes,
    overflow: c.overflow,
    dedup_window_ms: c.dedupWindowMs,
    max_in_flight_per_worker: c.maxInFlightPerWorker,
    visibility_ms: c.visibilityMs,
    default_ttl_ms: c.defaultTtlMs,
    max_dead_letters: c.maxDeadLetters,
  };
}

export function statsWire(s: QueueStats): Record<string, unknown> {
  return {
    name: s.name,
    depth: s.depth,
    bytes: s.bytes,
    ready: s.ready,
    in_flight: s.inFlight,
    delayed: s.delayed,
    dead_letters: s.deadLetters,
    oldest_age_ms: s.oldestAgeMs,
    deliveries: s.deliveries,
    redeliveries: s.redeliveries,
    acked: s.acked,
    dead_lettered: s.deadLettered,
    config: configWire(s.config),
  };
}
