/** The channel transports: WebSocket at `/v1/realtime` (docs/channels.md). */
export { createRealtimeGateway, type RealtimeGateway, type RealtimeGatewayDeps } from './gateway.js';
export { channelIdentity } from './identity.js';
export { REALTIME_PATH, REALTIME_SUBPROTOCOL, resolveRealtimeOptions, type RealtimeOptions, type ResolvedRealtimeOptions } from './options.js';
export { textFrame } from './ws-frame.js';
export { registerRealtimeMetrics, type RealtimeMetrics } from './metrics.js';
