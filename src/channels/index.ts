/**
 * Channels: named message streams for browsers, with per-channel offsets and epochs, bounded
 * history (in memory or durable in the log), recovery, presence and capabilities
 * (docs/channels.md). Transport-free; src/server/realtime and the SSE routes carry it.
 */
export { ChannelHub } from './hub.js';
export type { ChannelClusterStats, ClusterBackplane } from './cluster.js';
export type { ChannelHubOptions, HistoryResult, HubStats, PresenceResult, PublishResult, SubscribeRequest, SubscribeResult } from './hub.js';
export { Channel, type Recovery, type StreamPosition } from './channel.js';
export { Publication, PresenceEvent } from './publication.js';
export { RowFilter, type RowFilterSpec, type FilterCondition, type FilterOp } from './row-filter.js';
export type { PresenceEntry, Subscriber } from './subscriber.js';
export { ChannelError, type ChannelErrorCode } from './errors.js';
export { CHANNEL_ACTIONS, UNRESTRICTED, authorizeChannel, canOnChannel } from './capabilities.js';
export type { ChannelAction, ChannelCapability, ChannelIdentity } from './capabilities.js';
export { channelsConfigSchema, DEFAULT_NAMESPACES, namespaceSchema } from './namespaces.js';
export type { ChannelsConfigInput, Namespace, NamespaceInput, SlowClientPolicy } from './namespaces.js';
export { parseChannelName, type ChannelName } from './names.js';
export { matchesChannel } from './pattern.js';
export { durableTopic } from './durable-log.js';
export * as channelDefaults from './defaults.js';
