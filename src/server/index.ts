/**
 * Brook's HTTP API on node:http. The routes, their bodies and their errors are documented in
 * docs/http-api.md; status codes are mapped from error codes in one place (./errors.ts).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setMaxListeners } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import { ReadBudget, TopicAutoCreator } from '../broker/index.js';
import { QueueManager, type QueueService } from '../queues/index.js';
import { JetStreamQueueService } from '../queues/jetstream/index.js';
import { JetStreamEngine } from '../engine/jetstream/index.js';
import { InvalidArgumentError } from '../engine/index.js';
import { bindExposure, createAuthenticator, NOBODY, type AuthConfig } from './auth/index.js';
import { declaredLength, tooLarge } from './body.js';
import {
  DEFAULT_MAX_BATCH_RECORDS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_IN_FLIGHT_PRODUCE_BYTES,
  DEFAULT_MAX_IN_FLIGHT_READ_BYTES,
  DEFAULT_SHUTDOWN_GRACE_MS,
} from './defaults.js';
import { errorReply, rawErrorResponse } from './errors.js';
import { Metrics } from './metrics.js';
import { InFlightBytes, ProduceQuotas, recordBytes, type QuotaConfig } from './quota/index.js';
import type { Reply } from './reply.js';
import { RequestContext } from './request-context.js';
import { Router } from './router.js';
import type { RouteDeps } from './routes/deps.js';
import { groupRoutes } from './routes/groups.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { queueRoutes } from './routes/queues.js';
import { recordRoutes } from './routes/records.js';
import { topicRoutes } from './routes/topics.js';
import { createWebSocketGateway, type WebSocketGateway, type WebSocketOptions } from './ws/index.js';
import { ChannelHub, channelDefaults, type ChannelHubOptions, type ClusterBackplane } from '../channels/index.js';
import { createRealtimeGateway, registerRealtimeMetrics, resolveRealtimeOptions, type RealtimeOptions } from './realtime/index.js';
import { SseStreams } from './realtime/sse.js';
import { channelRoutes } from './routes/channels.js';
import { cdcRoutes, type CdcAdmin } from './routes/cdc.js';

/** Channels (docs/channels.md): namespaces and hub bounds, and the realtime transports' bounds. */
export interface ChannelsServerOptions extends Omit<ChannelHubOptions, 'engine' | 'logger' | 'cluster'> {
  readonly realtime?: RealtimeOptions;
  /**
   * `'jetstream'`: serve every channel from any node on the JetStream engine's backplane
   * (docs/channels.md, "Several nodes"). @defaultValue single-node channels
   */
  readonly cluster?: 'jetstream';
}

export { HttpError, statusFor, type ErrorCode, type ServerErrorCode } from './errors.js';
export type { CdcAdmin } from './routes/cdc.js';

export interface ServerOptions {
  /** An opened engine; the server never opens or closes it. */
  readonly engine: Engine;
  readonly host: string;
  /** 0 picks a free port (see `BrookServer.port`). */
  readonly port: number;
  readonly logger: Logger;
  /** Producing to an unknown topic creates it with one partition; off → 404 TOPIC_NOT_FOUND. @defaultValue true */
  readonly autoCreateTopics?: boolean;
  /** Largest request body; larger ones get 413 without being buffered. @defaultValue 8 MiB */
  readonly maxBodyBytes?: number;
  /** Most records in one produce request. @defaultValue 10_000 */
  readonly maxBatchRecords?: number;
  /** How long `close()` waits for in-flight requests before cutting connections. @defaultValue 10_000 */
  readonly shutdownGraceMs?: number;
  /**
   * Token verification (docs/http-api.md, "Access control"). Without a secret or JWKS, auth is
   * off: every caller may do everything, and only a loopback `host` is accepted.
   * @defaultValue auth off
   */
  readonly auth?: AuthConfig;
  /** Serve a non-loopback `host` with auth off (logged loudly). @defaultValue false */
  readonly insecureNoAuth?: boolean;
  /** Produce quotas per principal and tier. @defaultValue no per-principal limits */
  readonly quotas?: QuotaConfig;
  /** Produce body bytes held at once across clients; past it produces answer 429. @defaultValue 64 MiB */
  readonly maxInFlightProduceBytes?: number;
  /** Bytes that reads (fetches and pushes, HTTP and WebSocket) may hold at once; past it fetches answer 429. @defaultValue 64 MiB */
  readonly maxInFlightReadBytes?: number;
  /** Where metrics are counted and scraped from (`GET /metrics`). @defaultValue new Metrics on a new Registry */
  readonly metrics?: Metrics;
  /** The WebSocket endpoint at `/v1/ws` (docs/protocol.md). @defaultValue the bounds in ./defaults.ts */
  readonly ws?: WebSocketOptions;
  /**
   * Work queues served under `/v1/queues`. When given, the caller opens and closes it.
   * @defaultValue a QueueManager on `engine`, opened (recovered) here and closed by `close()`
   */
  readonly queues?: QueueService;
  /**
   * Which queue backend the server opens when `queues` is not given: `engine` (QueueManager over
   * internal topics, any engine) or `native` (JetStream streams and consumers; JetStream engine
   * only, several nodes serve one queue; docs/queues.md "JetStream-native backend").
   * @defaultValue 'engine'
   */
  readonly queueBackend?: 'engine' | 'native';
  /** Channels at `/v1/realtime` and `/v1/channels/...`. @defaultValue the default namespaces (chat, user, topic) */
  readonly channels?: ChannelsServerOptions;
  /**
   * CDC sources shown and driven under `/v1/admin/cdc` (docs/http-api.md, "CDC"). The caller
   * starts and stops them. @defaultValue none
   */
  readonly cdc?: readonly CdcAdmin[];
}

export interface BrookServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  /** The WebSocket endpoint: open connections and per-session introspection. */
  readonly ws: Pick<WebSocketGateway, 'connections' | 'sessions'>;
  /** The channel hub (publish from the server process, stats). */
  readonly channels: ChannelHub;
  /** Open `/v1/realtime` connections and SSE streams. */
  readonly realtime: { readonly connections: number; readonly sseStreams: number };
  /**
   * Stops accepting connections, ends idle keep-alive connections, ends pending long polls
   * early (they answer with what they have), and resolves once in-flight requests have been
   * answered. Idempotent. Does not close the engine.
   */
  close(): Promise<void>;
}

/**
 * Starts the HTTP API and resolves once it listens.
 *
 * @example
 * const engine = new EmbeddedEngine({ dataDir: './.brook' });
 * await engine.open();
 * const server = await createServer({ engine, host: '127.0.0.1', port: 7420, logger });
 * // ... later
 * await server.close();
 * await engine.close();
 */
export async function createServer(options: ServerOptions): Promise<BrookServer> {
  const logger = options.logger.child({ component: 'http' });
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const authenticator = createAuthenticator(options.auth);
  const exposure = bindExposure(options.host, authenticator.enabled, options.insecureNoAuth ?? false);
  if (exposure === 'local-open') {
    logger.warn('authentication is off: any local client may read, write and delete every topic (see --auth-secret)');
  } else if (exposure === 'exposed-open') {
    logger.warn(
      { host: options.host },
      'AUTHENTICATION IS OFF ON A REACHABLE ADDRESS (--insecure-no-auth): anyone who can connect may read, write and delete every topic',
    );
  }
  const metrics = options.metrics ?? new Metrics({ logger });
  metrics.trackConsumerLag(options.engine);
  const engine = options.engine;
  if (engine instanceof JetStreamEngine) {
    metrics.trackCoordinator(() => engine.isGroupCoordinator);
    metrics.trackCoordinatorTakeovers(() => engine.groupCoordinatorTakeovers);
  }
  const queues = options.queues ?? (await openQueues(options, metrics));
  metrics.trackQueues(queues);
  const shutdown = new AbortController();
  // Every pending long poll listens on it; their number is bounded by open requests, not by 10.
  setMaxListeners(0, shutdown.signal);
  let closing: Promise<void> | null = null;

  const readBudget = new ReadBudget(options.maxInFlightReadBytes ?? DEFAULT_MAX_IN_FLIGHT_READ_BYTES);
  metrics.trackReadBudget(() => readBudget.inUse);
  const deps: RouteDeps = {
    engine: options.engine,
    queues,
    logger,
    autoCreateTopics: options.autoCreateTopics ?? true,
    autoCreate: (options.autoCreateTopics ?? true) ? new TopicAutoCreator(options.engine, logger) : null,
    maxBatchRecords: options.maxBatchRecords ?? DEFAULT_MAX_BATCH_RECORDS,
    maxBodyBytes,
    metrics,
    quotas: new ProduceQuotas(options.quotas, metrics.throttled),
    inFlight: new InFlightBytes(options.maxInFlightProduceBytes ?? DEFAULT_MAX_IN_FLIGHT_PRODUCE_BYTES, metrics.throttled),
    readBudget,
    isClosing: () => closing !== null,
  };
  const router = new Router();
  healthRoutes(router, deps);
  topicRoutes(router, deps);
  recordRoutes(router, deps);
  groupRoutes(router, deps);
  queueRoutes(router, deps);
  metricsRoutes(router, deps);
  cdcRoutes(router, options.cdc ?? []);
  const { realtime: realtimeOptions, cluster, ...hubOptions } = options.channels ?? {};
  if (hubOptions.presenceTtlMs !== undefined) assertPresenceTtl(hubOptions.presenceTtlMs, cluster !== undefined);
  const hub = new ChannelHub({
    ...hubOptions,
    engine: options.engine,
    logger: options.logger,
    ...(cluster === undefined ? {} : { cluster: channelBackplane(options.engine) }),
  });
  await hub.open();
  const resolvedRealtime = resolveRealtimeOptions(realtimeOptions);
  const sseStreams = new SseStreams(resolvedRealtime.sseKeepaliveMs);
  channelRoutes(router, { hub, authenticator, options: resolvedRealtime, sse: sseStreams });

  const send = (res: ServerResponse, reply: Reply): void => {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number> = { ...reply.headers };
    if (closing) headers['connection'] = 'close';
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers);
      res.end();
      return;
    }
    headers['content-type'] ??= 'application/json; charset=utf-8';
    headers['content-length'] = Buffer.byteLength(reply.body);
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    let routeLabel = '_unmatched';
    let reply: Reply;
    try {
      const route = router.match(req.method ?? 'GET', pathname);
      routeLabel = route.path;
      // Every non-public route knows its caller before its handler runs (401 here, 403 there).
      const principal = route.public ? NOBODY : await authenticator.authenticate(req.headers.authorization);
      const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
      const ctx = new RequestContext(req, res, route.params, query, maxBodyBytes, shutdown.signal, principal);
      reply = await route.handler(ctx);
    } catch (err) {
      const failed = errorReply(err, logger, { method: req.method, url: url.slice(0, 500) });
      metrics.error(failed.code);
      reply = failed;
    }
    metrics.httpRequest(routeLabel, reply.status);
    send(res, reply);
  };

  const accessLog = logger.isLevelEnabled('debug');
  const server = createHttpServer((req, res) => {
    if (accessLog) {
      const started = performance.now();
      res.once('finish', () => {
        const ms = Math.round((performance.now() - started) * 10) / 10;
        logger.debug({ method: req.method, url: req.url, status: res.statusCode, ms }, 'request');
      });
    }
    handle(req, res).catch((err: unknown) => {
      // send() itself failed (socket gone mid-write); nothing left to answer.
      logger.warn({ err }, 'could not write response');
    });
  });
  // Refuse an announced oversized body before the client sends it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = declaredLength(req);
    if (declared !== null && declared > maxBodyBytes) {
      const reply = errorReply(tooLarge(maxBodyBytes), logger, { method: req.method, url: req.url });
      metrics.error(reply.code);
      res.setHeader('connection', 'close');
      send(res, reply);
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    logger.debug({ err }, 'client error');
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    socket.end(
      err.code === 'HPE_HEADER_OVERFLOW'
        ? rawErrorResponse('HEADERS_TOO_LARGE', 'request headers are too large')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? rawErrorResponse('REQUEST_TIMEOUT', 'the request took too long to arrive')
          : rawErrorResponse('INVALID_REQUEST', 'malformed HTTP request'),
    );
  });
  // Requests in flight per connection. Node's closeIdleConnections() skips connections that
  // never carried a request (clients open spare ones), which would hold close() up until the
  // client drops them; this map lets close() end every connection with nothing in flight.
  const connections = new Map<Socket, number>();
  server.on('connection', (socket: Socket) => {
    connections.set(socket, 0);
    metrics.connectionOpened('http');
    socket.once('close', () => {
      connections.delete(socket);
      metrics.connectionClosed('http');
    });
  });
  const closeIdle = (): void => {
    // end(), not destroy(): a response just written may still sit in the socket's buffer.
    for (const [socket, inFlight] of connections) if (inFlight === 0) socket.end();
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    connections.set(socket, (connections.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (connections.get(socket) ?? 1) - 1;
      if (connections.has(socket)) connections.set(socket, left);
      if (closing && left === 0) socket.end();
    });
  });

  const gateway = createWebSocketGateway({
    engine: options.engine,
    queues,
    logger: options.logger,
    options: options.ws,
    autoCreate: deps.autoCreate,
    maxBatchRecords: deps.maxBatchRecords,
    authenticator,
    quotas: deps.quotas,
    inFlight: deps.inFlight,
    readBudget: deps.readBudget,
    connectionGauge: { opened: () => metrics.connectionOpened('ws'), closed: () => metrics.connectionClosed('ws') },
    observer: {
      produced: (topic, records, bytes, seconds) => metrics.produced(topic, records, bytes, seconds),
      delivered: (topic, records, count) => metrics.consumed(topic, count, recordBytes(count === records.length ? records : records.slice(0, count))),
      deliveredCount: (topic, count, bytes) => metrics.consumed(topic, count, bytes),
    },
  });
  const realtime = createRealtimeGateway({
    hub,
    authenticator,
    logger: options.logger,
    options: realtimeOptions,
    connectionGauge: { opened: () => metrics.connectionOpened('realtime'), closed: () => metrics.connectionClosed('realtime') },
    metrics: registerRealtimeMetrics(metrics.registry, hub),
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    if (realtime.handles(q === -1 ? target : target.slice(0, q))) realtime.handleUpgrade(req, socket, head);
    else gateway.handleUpgrade(req, socket, head);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'http server error'));

  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}`;
  logger.info({ url }, 'http server listening');

  return {
    url,
    port,
    ws: gateway,
    channels: hub,
    realtime: {
      get connections() {
        return realtime.connections;
      },
      get sseStreams() {
        return sseStreams.size;
      },
    },
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        shutdown.abort();
        const grace = setTimeout(() => {
          logger.warn('in-flight requests outlived the shutdown grace period; closing their connections');
          server.closeAllConnections();
          for (const socket of connections.keys()) socket.destroy();
        }, options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          hub.close();
          logger.info('http server closed');
          // Queues opened here are closed here; everything they acknowledged is already durable.
          if (options.queues) resolve();
          else queues.close().then(resolve, (err: unknown) => {
            logger.error({ err }, 'closing queues failed');
            resolve();
          });
        });
        gateway.close();
        realtime.close();
        sseStreams.close();
        closeIdle();
      });
      return closing;
    },
  };
}

async function openQueues(options: ServerOptions, metrics: Metrics): Promise<QueueService> {
  if ((options.queueBackend ?? 'engine') === 'engine') {
    return QueueManager.open({ engine: options.engine, logger: options.logger, observer: metrics.queueObserver });
  }
  if (!(options.engine instanceof JetStreamEngine)) throw new InvalidArgumentError('the native queue backend needs the JetStream engine');
  return JetStreamQueueService.open({ ...options.engine.natsAccess(), logger: options.logger, observer: metrics.queueObserver });
}

/** `channels.presenceTtlMs` only means something on the cluster backplane, within its bounds. */
function assertPresenceTtl(ttlMs: number, cluster: boolean): void {
  const { MIN_CLUSTER_PRESENCE_TTL_MS: min, MAX_CLUSTER_PRESENCE_TTL_MS: max } = channelDefaults;
  if (!cluster) throw new InvalidArgumentError('channels.presenceTtlMs needs channels.cluster (presence on one node has no TTL)');
  if (!Number.isSafeInteger(ttlMs) || ttlMs < min || ttlMs > max) {
    throw new InvalidArgumentError(`channels.presenceTtlMs must be an integer from ${min} to ${max} ms, got ${ttlMs}`);
  }
}

/** The NATS backplane of a JetStream engine (multi-node channels); other engines have none. */
function channelBackplane(engine: Engine): ClusterBackplane {
  if (!(engine instanceof JetStreamEngine)) {
    throw new InvalidArgumentError(`channels.cluster "jetstream" needs the JetStream engine (this server runs the ${engine.kind} engine)`);
  }
  const { nc, prefix, replicas } = engine.natsAccess();
  return { nc, prefix, replicas };
}
