import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import {
  StreamError,
  StreamSession,
  type TopicAutoCreator,
  type ProduceAdmission,
  type ReadBudget,
  type StreamLimits,
  type StreamObserver,
  type StreamSessionStats,
  type TopicAction,
} from '../../broker/index.js';
import type { Engine } from '../../engine/index.js';
import type { QueueService } from '../../queues/index.js';
import { can, type Authenticator, type Principal } from '../auth/index.js';
import { MAX_READ_BYTES, MAX_READ_RECORDS, MAX_WAIT_MS, WS_PATH } from '../defaults.js';
import { HttpError, rawErrorResponse, type CloseReason } from '../errors.js';
import type { InFlightBytes, ProduceQuotas } from '../quota/index.js';
import * as recordCodec from '../record-codec.js';
import { Connection } from './connection.js';
import { resolveWebSocketOptions, type WebSocketOptions } from './options.js';

/** The JSON subprotocol; also what a client that asks for none gets. */
export const JSON_SUBPROTOCOL = 'brook.v1.json';
/** The binary subprotocol (records in binary frames); chosen whenever a client offers it. */
export const BINARY_SUBPROTOCOL = 'brook.v1.bin';

export interface WebSocketGatewayDeps {
  readonly engine: Engine;
  /** Work queues served over the socket (queue frames). @defaultValue not served */
  readonly queues?: QueueService | undefined;
  readonly logger: Logger;
  readonly options?: WebSocketOptions | undefined;
  /** Shared with HTTP; null answers TOPIC_NOT_FOUND for unknown topics. */
  readonly autoCreate: TopicAutoCreator | null;
  readonly maxBatchRecords: number;
  readonly authenticator: Authenticator;
  /** Per-principal produce quotas, shared with HTTP. */
  readonly quotas?: ProduceQuotas;
  /** The server-wide bound on produce bytes in flight, shared with HTTP. */
  readonly inFlight?: InFlightBytes;
  /** Counts open connections under transport `ws`. */
  readonly connectionGauge?: { opened(): void; closed(): void };
  /** Shared with HTTP: bytes reads may hold at once. */
  readonly readBudget?: ReadBudget;
  /** Counts records produced and delivered over WebSocket, like the HTTP routes do. */
  readonly observer?: StreamObserver;
}

/** The `/v1/ws` endpoint: upgrades, connection cap, heartbeat and shutdown. */
export interface WebSocketGateway {
  /** Takes an HTTP `upgrade` event; answers 404 for paths other than `/v1/ws`. */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  /** Open connections. */
  readonly connections: number;
  /** Introspection of every open session (subscriptions, credits, send buffers). */
  sessions(): StreamSessionStats[];
  /** Closes every connection with 1001 and refuses new ones (closed at once with 1001). Idempotent. */
  close(): void;
}

type Admission = { readonly ok: true; readonly principal: Principal } | { readonly ok: false; readonly reason: CloseReason; readonly message: string };

/**
 * Creates the WebSocket endpoint. Frames are handled by {@link StreamSession} (src/broker); this
 * layer only moves text frames and enforces connection-level bounds: `maxPayload` (1009), the
 * connection cap (4008), the heartbeat (4001), authentication at the handshake (1008) and
 * shutdown (1001).
 */
export function createWebSocketGateway(deps: WebSocketGatewayDeps): WebSocketGateway {
  const options = resolveWebSocketOptions(deps.options);
  const logger = deps.logger.child({ component: 'ws' });
  const autoCreate = deps.autoCreate;
  const limits: StreamLimits = {
    maxFrameBytes: options.maxFrameBytes,
    maxInflightProduce: options.maxInflightProduce,
    maxInflightRequests: options.maxInflightRequests,
    maxSubscriptions: options.maxSubscriptions,
    maxBatchRecords: deps.maxBatchRecords,
    maxBufferedBytes: options.maxBufferedBytes,
    heartbeatMs: options.heartbeatMs,
    maxFetchRecords: MAX_READ_RECORDS,
    maxFetchBytes: MAX_READ_BYTES,
    maxWaitMs: MAX_WAIT_MS,
  };
  const codec = { toProduceRecord: recordCodec.toProduceRecord, recordJson: recordCodec.recordJson };
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (protocols) =>
      protocols.has(BINARY_SUBPROTOCOL) ? BINARY_SUBPROTOCOL : protocols.has(JSON_SUBPROTOCOL) ? JSON_SUBPROTOCOL : false,
  });
  const live = new Set<Connection>();
  let closing = false;

  const heartbeat = setInterval(() => {
    const silentSince = Date.now() - 3 * options.heartbeatMs;
    for (const connection of live) {
      if (connection.lastSeen < silentSince) {
        connection.end('HEARTBEAT_TIMEOUT', 'no frame, ping or pong for 3 heartbeat intervals', options.heartbeatMs);
      } else if (connection.ws.readyState === WebSocket.OPEN) {
        // ping() throws on a socket that is already closing.
        connection.ws.ping();
      }
    }
  }, options.heartbeatMs);
  heartbeat.unref();

  const admit = async (req: IncomingMessage, query: URLSearchParams): Promise<Admission> => {
    try {
      const credential = req.headers.authorization ?? query.get('token');
      return { ok: true, principal: await deps.authenticator.authenticate(credential) };
    } catch (err) {
      if (err instanceof HttpError && (err.code === 'UNAUTHORIZED' || err.code === 'AUTH_UNAVAILABLE')) {
        return { ok: false, reason: err.code, message: err.message };
      }
      logger.error({ err }, 'authentication failed unexpectedly');
      return { ok: false, reason: 'AUTH_UNAVAILABLE', message: 'authentication is unavailable' };
    }
  };

  /** The HTTP API's produce bounds, in the same order: server-wide bytes in flight, then the caller's quota. */
  const produceAdmission = (principal: Principal, address: string | undefined) => {
    const { quotas, inFlight } = deps;
    return (records: number, bytes: number): ProduceAdmission => {
      const release = inFlight ? inFlight.tryAcquire(bytes) : noop;
      if (release === null) return { retryAfterMs: 1000 };
      const throttle = quotas?.tryTake(principal, address, records, bytes) ?? null;
      if (throttle) {
        release();
        return { retryAfterMs: throttle.retryAfterMs };
      }
      return { release };
    };
  };

  const accept = (ws: WebSocket, socket: Socket, admission: Admission): void => {
    const connection = new Connection(ws, socket, logger, options.maxBufferedBytes);
    if (closing) return connection.end('SHUTTING_DOWN', 'server shutting down');
    if (!admission.ok) return connection.end(admission.reason, admission.message);
    if (live.size >= options.maxConnections) {
      return connection.end('TOO_MANY_CONNECTIONS', `too many connections (limit ${options.maxConnections})`);
    }
    const id = `s-${randomUUID()}`;
    const session = new StreamSession({
      id,
      engine: deps.engine,
      logger: logger.child({ session: id }),
      codec,
      encoding: ws.protocol === BINARY_SUBPROTOCOL ? 'binary' : 'json',
      transport: connection,
      limits,
      autoCreate,
      ...(deps.authenticator.enabled ? { authorize: authorizer(admission.principal) } : {}),
      ...(deps.quotas?.enabled || deps.inFlight ? { admitProduce: produceAdmission(admission.principal, socket.remoteAddress) } : {}),
      ...(deps.observer === undefined ? {} : { observer: deps.observer }),
      ...(deps.readBudget === undefined ? {} : { readBudget: deps.readBudget }),
      ...(deps.queues ? { queues: deps.queues } : {}),
    });
    live.add(connection);
    deps.connectionGauge?.opened();
    const expiry = endAtExpiry(connection, admission.principal.expiresAt);
    connection.attach(session, () => {
      clearTimeout(expiry.timer);
      live.delete(connection);
      deps.connectionGauge?.closed();
    });
  };

  return {
    handleUpgrade(req, socket, head) {
      // Split by hand: `new URL` throws on some request targets a client can send.
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const pathname = q === -1 ? target : target.slice(0, q);
      if (pathname !== WS_PATH) {
        socket.end(rawErrorResponse('NOT_FOUND', `no WebSocket endpoint at ${pathname.slice(0, 200)}; use ${WS_PATH}`));
        return;
      }
      const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1));
      // Before the handshake, so no frame can arrive while the credential is checked; the
      // outcome is told after it, as a close code, which browsers can see (an HTTP 401 they cannot).
      // Node's HTTP server stops watching the socket once it emits `upgrade`.
      const onError = (err: Error): void => {
        logger.debug({ err }, 'socket error before the WebSocket handshake');
        socket.destroy();
      };
      socket.on('error', onError);
      void admit(req, query).then((admission) => {
        socket.off('error', onError);
        // ws answers a malformed handshake with 400 itself, and drops a socket that is gone.
        wss.handleUpgrade(req, socket, head, (ws) => accept(ws, socket, admission));
      }).catch((err: unknown) => {
        logger.error({ err }, 'websocket upgrade failed');
        socket.destroy();
      });
    },
    get connections() {
      return live.size;
    },
    sessions() {
      const out: StreamSessionStats[] = [];
      for (const connection of live) {
        const stats = connection.stats();
        if (stats) out.push(stats);
      }
      return out;
    },
    close() {
      if (closing) return;
      closing = true;
      clearInterval(heartbeat);
      for (const connection of live) connection.end('SHUTTING_DOWN', 'server shutting down');
    },
  };
}

function noop(): void {}

/** Longest delay setTimeout takes (about 24.8 days); a later expiry is re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Ends the connection when its token expires (close code 4010: the SDK reconnects, with a fresh
 * token when it has a token function). One timer per connection, not per frame.
 */
function endAtExpiry(connection: Connection, expiresAt: number | undefined): { timer: NodeJS.Timeout | undefined } {
  const state: { timer: NodeJS.Timeout | undefined } = { timer: undefined };
  if (expiresAt === undefined) return state;
  const arm = (): void => {
    const left = expiresAt - Date.now();
    if (left <= 0) {
      connection.end('TOKEN_EXPIRED', 'the token expired; reconnect with a fresh one');
      return;
    }
    state.timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    state.timer.unref();
  };
  arm();
  return state;
}

/** Topic permissions of the connection's principal, checked per frame like per HTTP request. */
function authorizer(principal: Principal): (action: TopicAction, topic: string) => void {
  return (action, topic) => {
    if (!can(principal, action, topic)) throw new StreamError('FORBIDDEN', `not allowed to ${action} topic ${JSON.stringify(topic)}`);
  };
}
