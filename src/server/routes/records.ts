import { z } from 'zod';
import {
  OffsetOutOfRangeError,
  type AppendOptions,
  type Engine,
  type ReadResult,
} from '../../engine/index.js';
import { budgetedRead, MAX_HEADER_NAME_LENGTH } from '../../broker/index.js';
import { authorize } from '../auth/index.js';
import { declaredLength } from '../body.js';
import { MAX_READ_BYTES, MAX_READ_RECORDS, MAX_WAIT_MS } from '../defaults.js';
import { HttpError } from '../errors.js';
import { intQuery, parseNonNegativeInt, topicParam, writableTopicParam } from '../params.js';
import { recordBytes } from '../quota/index.js';
import { consecutiveOffsetsBody, offsetsBody, readResultBody, toProduceRecord } from '../record-codec.js';
import { rawJson, type Reply } from '../reply.js';
import { validate, type RequestContext } from '../request-context.js';
import type { Router } from '../router.js';
import type { RouteDeps } from './deps.js';

const produceEnvelope = z.strictObject({
  // Records are checked after the count, so an oversized batch is a 413 and not a slow 400.
  records: z.array(z.unknown()),
  partition: z.int().nonnegative().optional(),
  producer: z.strictObject({ id: z.string().min(1), sequence: z.int().nonnegative() }).optional(),
});

const recordSchema = z.strictObject({
  key: z.string().nullable().optional(),
  value: z.unknown(),
  headers: z.record(z.string().max(MAX_HEADER_NAME_LENGTH), z.string()).optional(),
});
const recordsSchema = z.array(recordSchema);

const DEFAULT_READ_RECORDS = 500;

export function recordRoutes(router: Router, deps: RouteDeps): void {
  const withAutoCreate = autoCreator(deps);
  router.add('POST', '/v1/topics/:topic/records', (ctx) => produce(ctx, deps, withAutoCreate));
  router.add('GET', '/v1/topics/:topic/partitions/:partition/records', (ctx) => fetchRecords(ctx, deps));
}

type WithAutoCreate = ReturnType<typeof autoCreator>;

/**
 * Checked in this order, each before the next costs anything: the topic name, the `write`
 * permission (before the topic is looked up), the caller's quota (before the body is read), the
 * server's in-flight bound (reserving the declared body size), then the batch itself against
 * the quota.
 */
async function produce(ctx: RequestContext, deps: RouteDeps, withAutoCreate: WithAutoCreate): Promise<Reply> {
  const topic = writableTopicParam(ctx.param('topic'));
  authorize(ctx.principal, 'write', topic);
  deps.quotas.assertNotExhausted(ctx.principal, ctx.address);
  const release = deps.inFlight.acquire(Math.min(declaredLength(ctx.req) ?? deps.maxBodyBytes, deps.maxBodyBytes));
  try {
    return await produceBatch(ctx, deps, withAutoCreate, topic);
  } finally {
    release();
  }
}

async function produceBatch(ctx: RequestContext, deps: RouteDeps, withAutoCreate: WithAutoCreate, topic: string): Promise<Reply> {
  const { engine } = deps;
  const body = await ctx.body(produceEnvelope);
  if (body.records.length === 0) throw new HttpError('INVALID_REQUEST', 'records must hold at least one record');
  if (body.records.length > deps.maxBatchRecords) {
    throw new HttpError(
      'MESSAGE_TOO_LARGE',
      `batch of ${body.records.length} records exceeds the limit of ${deps.maxBatchRecords} records`,
    );
  }
  if (body.producer !== undefined && body.partition === undefined) {
    throw new HttpError('INVALID_REQUEST', 'producer (idempotence) needs an explicit partition');
  }
  const records = validate(recordsSchema, body.records, 'body.records').map(toProduceRecord);
  const bytes = recordBytes(records);
  deps.quotas.take(ctx.principal, ctx.address, records.length, bytes);

  const { partition, producer } = body;
  const started = performance.now();
  if (partition === undefined) {
    const positions = await withAutoCreate(topic, () => engine.produce(topic, records));
    deps.metrics.produced(topic, records.length, bytes, (performance.now() - started) / 1000);
    return rawJson(200, offsetsBody(positions));
  }
  const options: AppendOptions | undefined = producer ? { producer } : undefined;
  const result = await withAutoCreate(topic, () => engine.append(topic, partition, records, options));
  // A retried batch was not appended again: nothing came in.
  if (!result.duplicate) deps.metrics.produced(topic, records.length, bytes, (performance.now() - started) / 1000);
  return rawJson(200, consecutiveOffsetsBody(result.partition, result.baseOffset, result.count));
}

/** Runs `op`, creating its topic first when it does not exist and auto-creation is on. */
function autoCreator(deps: RouteDeps) {
  const creator = deps.autoCreate;
  return <T>(topic: string, op: () => Promise<T>): Promise<T> => (creator ? creator.run(topic, op) : op());
}

async function fetchRecords(ctx: RequestContext, { engine, metrics, readBudget }: RouteDeps): Promise<Reply> {
  const topic = topicParam(ctx.param('topic'));
  authorize(ctx.principal, 'read', topic);
  const partition = parseNonNegativeInt('partition', ctx.param('partition'));
  const q = ctx.query;
  const limits = {
    maxRecords: intQuery(q, 'max', DEFAULT_READ_RECORDS, 1, MAX_READ_RECORDS),
    ...(q.has('max_bytes') ? { maxBytes: intQuery(q, 'max_bytes', 0, 1, MAX_READ_BYTES) } : {}),
  };
  const waitMs = intQuery(q, 'wait_ms', 0, 0, MAX_WAIT_MS);
  const offset = await startOffset(engine, topic, partition, q);

  // The reply is built while the read's share of the server's read budget is held.
  const reply = (result: ReadResult): { empty: boolean; nextOffset: number; body: Reply } => {
    metrics.consumed(topic, result.records.length, recordBytes(result.records));
    return { empty: result.records.length === 0, nextOffset: result.nextOffset, body: rawJson(200, readResultBody(result)) };
  };
  let answer = await budgetedRead(engine, readBudget, { topic, partition, offset, limits }, reply);
  if (answer.empty && waitMs > 0) {
    const signal = ctx.signal;
    const ready = await engine.waitForData(topic, partition, answer.nextOffset, { timeoutMs: waitMs, signal });
    if (ready && !signal.aborted) answer = await budgetedRead(engine, readBudget, { topic, partition, offset: answer.nextOffset, limits }, reply);
  }
  return answer.body;
}

/** `offset` (a number, `earliest` or `latest`) or `timestamp`; neither means `earliest`. */
async function startOffset(engine: Engine, topic: string, partition: number, q: URLSearchParams): Promise<number> {
  const offset = q.get('offset');
  const timestamp = q.get('timestamp');
  if (offset !== null && timestamp !== null) {
    throw new HttpError('INVALID_REQUEST', 'give either offset or timestamp, not both');
  }
  if (timestamp !== null) {
    const ms = parseNonNegativeInt('timestamp', timestamp);
    // Past every representable time: nothing is that new, so reading starts at the end.
    if (ms === Number.POSITIVE_INFINITY) return (await engine.watermarks(topic, partition)).highWatermark;
    return engine.offsetForTimestamp(topic, partition, ms);
  }
  if (offset === null || offset === 'earliest') return (await engine.watermarks(topic, partition)).lowWatermark;
  if (offset === 'latest') return (await engine.watermarks(topic, partition)).highWatermark;
  const value = parseNonNegativeInt('offset', offset);
  if (value === Number.POSITIVE_INFINITY) {
    // Well-formed but beyond any offset a partition can reach: out of range, not malformed.
    const { lowWatermark, highWatermark } = await engine.watermarks(topic, partition);
    throw new OffsetOutOfRangeError(Number(offset), lowWatermark, highWatermark);
  }
  return value;
}
