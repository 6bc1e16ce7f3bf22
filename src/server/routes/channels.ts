/**
 * Channel routes (docs/channels.md): server-side publish, history, presence, and the SSE stream.
 * The SSE route takes over its response and authenticates itself, since EventSource cannot send
 * an Authorization header (`?token=` instead).
 */
import { z } from 'zod';
import { ChannelError, type ChannelHub, type ChannelIdentity } from '../../channels/index.js';
import type { Authenticator } from '../auth/index.js';
import { HttpError } from '../errors.js';
import { channelIdentity } from '../realtime/identity.js';
import type { ResolvedRealtimeOptions } from '../realtime/options.js';
import { SseStream, SseStreams } from '../realtime/sse.js';
import { json, type Reply } from '../reply.js';
import type { RequestContext } from '../request-context.js';
import type { Router } from '../router.js';

export interface ChannelRouteDeps {
  readonly hub: ChannelHub;
  readonly authenticator: Authenticator;
  readonly options: ResolvedRealtimeOptions;
  readonly sse: SseStreams;
}

const publishBody = z.strictObject({ data: z.unknown() });



export function channelRoutes(router: Router, deps: ChannelRouteDeps): void {
  const identity = (ctx: RequestContext): ChannelIdentity => channelIdentity(ctx.principal, deps.authenticator.enabled);

  router.add('POST', '/v1/channels/:channel/messages', async (ctx) => {
    const channel = ctx.param('channel');
    deps.hub.resolve(channel);
    const body = await ctx.body(publishBody);
    if (body.data === undefined) throw new HttpError('INVALID_REQUEST', 'body.data is required (any JSON value)');
    const result = await deps.hub.publish(identity(ctx), channel, JSON.stringify(body.data), 'server');
    return json(200, result);
  });

  router.add('GET', '/v1/channels/:channel/history', async (ctx) => {
    const since = intParam(ctx.query.get('since'), 'since', -1);
    const limit = intParam(ctx.query.get('limit'), 'limit', 100);
    const h = await deps.hub.history(identity(ctx), ctx.param('channel'), since, Math.max(1, limit));
    const publications = h.publications.map((p) => `{"offset":${p.offset},"data":${p.data}}`).join(',');
    return {
      status: 200,
      body: `{"epoch":${JSON.stringify(h.epoch)},"offset":${h.offset},"recovered":${h.recovered},"publications":[${publications}]}`,
    };
  });

  router.add('GET', '/v1/channels/:channel/presence', (ctx) => {
    const p = deps.hub.presence(identity(ctx), ctx.param('channel'));
    return json(200, { count: p.count, clients: p.clients.map((e) => ({ client: e.client, user: e.user, ...(e.info === undefined ? {} : { info: JSON.parse(e.info) as unknown }) })) });
  });

  router.add('GET', '/v1/channels/:channel/events', (ctx) => sse(ctx, deps), { public: true });
}

async function sse(ctx: RequestContext, deps: ChannelRouteDeps): Promise<Reply> {
  const principal = await deps.authenticator.authenticate(ctx.req.headers.authorization ?? ctx.query.get('token'));
  const who = channelIdentity(principal, deps.authenticator.enabled);
  const channel = ctx.param('channel');
  const lastEventId = ctx.req.headers['last-event-id'];
  const sinceText = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : ctx.query.get('since');
  const since = sinceText === null ? undefined : intParam(sinceText, 'Last-Event-ID / since', -1);
  const epoch = ctx.query.get('epoch') ?? undefined;
  const filter = filterParam(ctx.query.get('filter'));
  deps.hub.resolve(channel);

  const res = ctx.response;
  const stream = new SseStream(res, channel, { client: deps.sse.nextClientId(), user: who.user, info: who.info as string | undefined }, deps.hub, deps.options);
  let failure: ChannelError | undefined;
  const request = { channel, since: since === undefined ? undefined : { offset: since, epoch }, ...(filter === undefined ? {} : { filter }) };
  await deps.hub.subscribe(who, stream, [request], (results) => {
    const r = results[0];
    if (r === undefined) return;
    if (r.error) {
      failure = r.error;
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
      // EventSource on another origin: the credential is the `?token=` (never a cookie), so any origin may read.
      'access-control-allow-origin': '*',
    });
    stream.write('retry: 1000\n\n');
    const ok = r.ok;
    // Carries `id` = the position the stream starts from: a drop before the first message still
    // resumes from here (Last-Event-ID), and so does one after recovered:false.
    const startsAfter = ok.recovered === true ? (since ?? ok.offset) : ok.offset;
    stream.event('subscribed', { channel, offset: ok.offset, epoch: ok.epoch, ...(ok.recovered === undefined ? {} : { recovered: ok.recovered }) }, startsAfter);
    for (const pub of ok.missed) stream.write(`id: ${pub.offset}\ndata: ${pub.data}\n\n`);
  });
  if (failure) throw failure;
  if (!stream.active) return { status: 200 };
  deps.sse.add(stream);
  const done = (): void => {
    stream.stop();
    deps.sse.delete(stream);
    if (!res.writableEnded) res.end();
  };
  res.once('close', done);
  ctx.signal.addEventListener('abort', done, { once: true });
  return { status: 200 };
}

function intParam(text: string | null, name: string, fallback: number): number {
  if (text === null || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < -1) throw new HttpError('INVALID_REQUEST', `${name} must be an integer >= -1, got ${JSON.stringify(text.slice(0, 50))}`);
  return n;
}

/** `?filter=<JSON>` (docs/channels.md, "Row filters"): parsed here, validated by the hub. */
function filterParam(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ChannelError('INVALID_FILTER', 'invalid filter: ?filter= must be JSON, e.g. [["after.status","eq","paid"]]');
  }
}
