/**
 * `/v1/realtime`: the channel WebSocket endpoint (docs/channels.md). Upgrades with the token
 * checked before the handshake, connection caps (server-wide and per user), and one interval for
 * every connection's heartbeat, idle timeout, token expiry and close grace — no per-connection
 * timers.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import type { ChannelHub } from '../../channels/index.js';
import type { Authenticator } from '../auth/index.js';
import { closeCodeFor, HttpError, type CloseReason } from '../errors.js';
import { RealtimeConnection, type RealtimeContext } from './connection.js';
import { channelIdentity } from './identity.js';
import type { RealtimeMetrics } from './metrics.js';
import { CLOSE_GRACE_MS, REALTIME_PATH, REALTIME_SUBPROTOCOL, resolveRealtimeOptions, type RealtimeOptions } from './options.js';

export interface RealtimeGatewayDeps {
  readonly hub: ChannelHub;
  readonly authenticator: Authenticator;
  readonly logger: Logger;
  readonly options?: RealtimeOptions | undefined;
  /** Counts open connections under transport `realtime`. */
  readonly connectionGauge?: { opened(): void; closed(): void };
  /** Counts server-initiated closes by reason. */
  readonly metrics?: RealtimeMetrics;
  readonly now?: () => number;
}

export interface RealtimeGateway {
  /** Whether an upgrade request is for this endpoint. */
  handles(pathname: string): boolean;
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  readonly connections: number;
  /** Closes every connection with 1001 and refuses new ones. Idempotent. */
  close(): void;
}

type Admission =
  | { readonly ok: true; readonly identity: RealtimeConnection['identity'] }
  | { readonly ok: false; readonly reason: CloseReason; readonly message: string };

export function createRealtimeGateway(deps: RealtimeGatewayDeps): RealtimeGateway {
  const options = resolveRealtimeOptions(deps.options);
  const logger = deps.logger.child({ component: 'realtime' });
  const now = deps.now ?? Date.now;
  const auth = deps.authenticator;
  // One flush for every connection that got frames in this event-loop turn.
  let dirty: RealtimeConnection[] = [];
  let spare: RealtimeConnection[] = [];
  let flushScheduled = false;
  const flushAll = (): void => {
    flushScheduled = false;
    const list = dirty;
    dirty = spare;
    spare = list;
    for (const c of list) c.flush();
    list.length = 0;
  };
  const ctx: RealtimeContext = {
    flushLater(connection) {
      dirty.push(connection);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    },
    hub: deps.hub,
    ...(deps.metrics === undefined ? {} : { closed: deps.metrics.closed }),
    options,
    logger,
    now,
    refreshIdentity: async (token) => channelIdentity(await auth.authenticate(token), auth.enabled),
  };
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
    skipUTF8Validation: false,
    handleProtocols: (protocols) => (protocols.has(REALTIME_SUBPROTOCOL) ? REALTIME_SUBPROTOCOL : false),
  });
  const live = new Set<RealtimeConnection>();
  const perUser = new Map<string, number>();
  const boot = Date.now().toString(36);
  let sequence = 0;
  let closing = false;

  const sweep = setInterval(() => {
    const t = now();
    const idleBefore = t - options.idleTimeoutMs;
    for (const c of live) {
      if (c.closingAt !== 0) {
        if (t - c.closingAt > CLOSE_GRACE_MS) c.ws.terminate();
      } else if (c.lastSeen < idleBefore) {
        c.end('HEARTBEAT_TIMEOUT', 'no frame, ping or pong within the idle timeout');
      } else if (c.identity.expiresAt !== undefined && c.identity.expiresAt < t) {
        c.end('TOKEN_EXPIRED', 'the token has expired; refresh it and reconnect');
      } else if (c.ws.readyState === WebSocket.OPEN) {
        c.ws.ping();
      }
    }
  }, options.heartbeatMs);
  sweep.unref();

  const admit = async (req: IncomingMessage, query: URLSearchParams): Promise<Admission> => {
    try {
      const principal = await auth.authenticate(req.headers.authorization ?? query.get('token'));
      return { ok: true, identity: channelIdentity(principal, auth.enabled) };
    } catch (err) {
      if (err instanceof HttpError && (err.code === 'UNAUTHORIZED' || err.code === 'AUTH_UNAVAILABLE')) {
        return { ok: false, reason: err.code, message: err.message };
      }
      logger.error({ err }, 'authentication failed unexpectedly');
      return { ok: false, reason: 'AUTH_UNAVAILABLE', message: 'authentication is unavailable' };
    }
  };

  /** Refused after the handshake, so browsers can see the close code (an HTTP 401 they cannot). */
  const refuse = (ws: WebSocket, reason: CloseReason, message: string): void => {
    deps.metrics?.closed(reason);
    ws.on('error', () => undefined); // the close below is the answer; a write error changes nothing
    ws.close(closeCodeFor(reason), message.slice(0, 120));
  };

  const accept = (ws: WebSocket, socket: Socket, admission: Admission): void => {
    if (closing) return refuse(ws, 'SHUTTING_DOWN', 'server shutting down');
    if (!admission.ok) return refuse(ws, admission.reason, admission.message);
    if (live.size >= options.maxConnections) return refuse(ws, 'TOO_MANY_CONNECTIONS', `too many connections (limit ${options.maxConnections})`);
    const user = admission.identity.user;
    const userCount = user === '' ? 0 : (perUser.get(user) ?? 0);
    if (user !== '' && userCount >= options.maxConnectionsPerUser) {
      return refuse(ws, 'TOO_MANY_USER_CONNECTIONS', `too many connections for this user (limit ${options.maxConnectionsPerUser})`);
    }
    if (user !== '') perUser.set(user, userCount + 1);
    const connection = new RealtimeConnection(ws, socket, `c${boot}.${(sequence++).toString(36)}`, admission.identity, ctx);
    ws.on('error', (err) => logger.debug({ err, client: connection.client }, 'realtime socket error'));
    socket.setNoDelay(true);
    live.add(connection);
    deps.connectionGauge?.opened();
    connection.start(() => {
      live.delete(connection);
      deps.connectionGauge?.closed();
      if (user !== '') {
        const left = (perUser.get(user) ?? 1) - 1;
        if (left === 0) perUser.delete(user);
        else perUser.set(user, left);
      }
    });
  };

  return {
    handles: (pathname) => pathname === REALTIME_PATH,
    handleUpgrade(req, socket, head) {
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1));
      const onError = (err: Error): void => {
        logger.debug({ err }, 'socket error before the WebSocket handshake');
        socket.destroy();
      };
      socket.on('error', onError);
      admit(req, query)
        .then((admission) => {
          socket.off('error', onError);
          wss.handleUpgrade(req, socket, head, (ws) => accept(ws, socket, admission));
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'realtime upgrade failed');
          socket.destroy();
        });
    },
    get connections() {
      return live.size;
    },
    close() {
      if (closing) return;
      closing = true;
      for (const c of live) c.end('SHUTTING_DOWN', 'server shutting down');
      // The sweep keeps running until every connection is gone, cutting peers that do not close.
      const drain = setInterval(() => {
        const t = now();
        for (const c of live) if (t - c.closingAt > CLOSE_GRACE_MS) c.ws.terminate();
        if (live.size === 0) {
          clearInterval(drain);
          clearInterval(sweep);
        }
      }, 250);
      drain.unref();
    },
  };
}

