/** The realtime endpoint's bounds (`createServer({ channels: { realtime } })`); see docs/channels.md. */
export interface RealtimeOptions {
  /** Open `/v1/realtime` connections; one more is closed with 4008. @defaultValue 100_000 */
  readonly maxConnections?: number;
  /** Connections per user (`sub`); one more is closed with 4009. @defaultValue 100 */
  readonly maxConnectionsPerUser?: number;
  /** Channels one connection may be subscribed to. @defaultValue 1_000 */
  readonly maxChannelsPerConnection?: number;
  /** Largest inbound frame (1009 past it). @defaultValue 128 KiB */
  readonly maxFrameBytes?: number;
  /** Outbound bytes queued per connection before the slow-client policy applies. @defaultValue 1 MiB */
  readonly maxQueuedBytes?: number;
  /** Outbound messages queued per connection (since the socket last drained). @defaultValue 1_000 */
  readonly maxQueuedMessages?: number;
  /** Ping interval. @defaultValue 25_000 */
  readonly heartbeatMs?: number;
  /** A peer silent this long is closed with 4001. @defaultValue 3 × heartbeatMs */
  readonly idleTimeoutMs?: number;
  /** Publishes per second per connection (token bucket refill). @defaultValue 50 */
  readonly publishRate?: number;
  /** Token bucket size. @defaultValue 100 */
  readonly publishBurst?: number;
  /** SSE comment keepalive interval. @defaultValue 15_000 */
  readonly sseKeepaliveMs?: number;
}

export type ResolvedRealtimeOptions = { readonly [K in keyof RealtimeOptions]-?: number };

export function resolveRealtimeOptions(o: RealtimeOptions = {}): ResolvedRealtimeOptions {
  const heartbeatMs = o.heartbeatMs ?? 25_000;
  return {
    maxConnections: o.maxConnections ?? 100_000,
    maxConnectionsPerUser: o.maxConnectionsPerUser ?? 100,
    maxChannelsPerConnection: o.maxChannelsPerConnection ?? 1_000,
    maxFrameBytes: o.maxFrameBytes ?? 128 * 1024,
    maxQueuedBytes: o.maxQueuedBytes ?? 1024 * 1024,
    maxQueuedMessages: o.maxQueuedMessages ?? 1_000,
    heartbeatMs,
    idleTimeoutMs: o.idleTimeoutMs ?? 3 * heartbeatMs,
    publishRate: o.publishRate ?? 50,
    publishBurst: o.publishBurst ?? 100,
    sseKeepaliveMs: o.sseKeepaliveMs ?? 15_000,
  };
}

/** The path realtime upgrades are accepted on. */
export const REALTIME_PATH = '/v1/realtime';
/** The JSON subprotocol of `/v1/realtime`. */
export const REALTIME_SUBPROTOCOL = 'brook.realtime.v1';
/** Malformed frames in a row before the connection is closed with 4000. */
export const MAX_BAD_FRAMES = 10;
/** How long a closing connection may take to finish the close handshake before it is cut. */
export const CLOSE_GRACE_MS = 5_000;
/** Requests (subscribe, publish, history, refresh) one connection may have unanswered. */
export const MAX_PENDING_REQUESTS = 16;
