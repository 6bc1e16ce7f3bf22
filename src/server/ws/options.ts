import {
  DEFAULT_WS_HEARTBEAT_MS,
  DEFAULT_WS_MAX_BUFFERED_BYTES,
  DEFAULT_WS_MAX_CONNECTIONS,
  DEFAULT_WS_MAX_FRAME_BYTES,
  DEFAULT_WS_MAX_INFLIGHT_PRODUCE,
  DEFAULT_WS_MAX_INFLIGHT_REQUESTS,
  DEFAULT_WS_MAX_SUBSCRIPTIONS,
} from '../defaults.js';

/** The WebSocket endpoint's bounds (`createServer({ ws })`); see docs/protocol.md. */
export interface WebSocketOptions {
  /** Largest inbound frame; a larger one closes the connection with 1009. @defaultValue 8 MiB */
  readonly maxFrameBytes?: number;
  /** Open connections; one more is accepted and closed with 4008. @defaultValue 10_000 */
  readonly maxConnections?: number;
  /** Ping interval; a peer silent for 3 intervals is closed with 4001. @defaultValue 30_000 */
  readonly heartbeatMs?: number;
  /** Unacknowledged produce frames per connection; more are refused with RATE_LIMITED. @defaultValue 32 */
  readonly maxInflightProduce?: number;
  /** Unanswered requests of other types per connection; more are refused with RATE_LIMITED. @defaultValue 64 */
  readonly maxInflightRequests?: number;
  /** Subscriptions per connection (consumer-group partitions are not counted). @defaultValue 1_000 */
  readonly maxSubscriptions?: number;
  /** Pushing to a connection pauses while its send buffer holds more than this. @defaultValue 4 MiB */
  readonly maxBufferedBytes?: number;
}

export type ResolvedWebSocketOptions = { readonly [K in keyof WebSocketOptions]-?: number };

export function resolveWebSocketOptions(options: WebSocketOptions = {}): ResolvedWebSocketOptions {
  return {
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_WS_MAX_FRAME_BYTES,
    maxConnections: options.maxConnections ?? DEFAULT_WS_MAX_CONNECTIONS,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_WS_HEARTBEAT_MS,
    maxInflightProduce: options.maxInflightProduce ?? DEFAULT_WS_MAX_INFLIGHT_PRODUCE,
    maxInflightRequests: options.maxInflightRequests ?? DEFAULT_WS_MAX_INFLIGHT_REQUESTS,
    maxSubscriptions: options.maxSubscriptions ?? DEFAULT_WS_MAX_SUBSCRIPTIONS,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_WS_MAX_BUFFERED_BYTES,
  };
}
