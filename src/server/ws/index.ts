/** The WebSocket transport of the streaming protocol (docs/protocol.md) at `/v1/ws`. */
export { createWebSocketGateway, BINARY_SUBPROTOCOL, JSON_SUBPROTOCOL, type WebSocketGateway, type WebSocketGatewayDeps } from './gateway.js';
export type { WebSocketOptions } from './options.js';
