/** Every channel-hub default and bound in one place (docs/channels.md, "Bounds"). */

/** Channels held in memory at once; new channels past it are refused with CHANNEL_LIMIT. */
export const DEFAULT_MAX_CHANNELS = 1_000_000;
/** Largest history a namespace may configure per channel. */
export const MAX_HISTORY_SIZE = 10_000;
/** History age when a namespace gives a size but no ttl. */
export const DEFAULT_HISTORY_TTL_MS = 300_000;
/** Records scanned per durable namespace when rebuilding after a restart. */
export const DEFAULT_MAX_REBUILD_RECORDS = 1_000_000;
/** Publishes queued per durable namespace while an append is in flight. */
export const DEFAULT_MAX_PENDING_PUBLISHES = 10_000;
/** Bytes of publishes queued per durable namespace while an append is in flight. */
export const DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** Largest message data (serialized JSON). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** Presence entries per channel. */
export const DEFAULT_MAX_PRESENCE = 1_000;
/** How often channels without subscribers and without live history are dropped. */
export const DEFAULT_SWEEP_MS = 30_000;
/** Records a topic channel keeps for recovery when its namespace names no history size. */
export const DEFAULT_TOPIC_HISTORY = 100;
/** Records a topic tailer reads per batch. */
export const TOPIC_TAIL_BATCH = 500;
/** Longest a topic tailer long-polls the engine before checking it is still wanted. */
export const TOPIC_TAIL_WAIT_MS = 10_000;
/** Publications one recovery or history read returns at most. */
export const MAX_RECOVERY = 10_000;
/** Largest presence `info` from a token, serialized. */
export const MAX_INFO_BYTES = 1024;
/** Longest channel name. */
export const MAX_CHANNEL_NAME = 255;
/** Channel cluster: how long a presence entry outlives its node (refreshed every third of it). */
export const DEFAULT_CLUSTER_PRESENCE_TTL_MS = 30_000;
/** Shortest presence TTL: entries are refreshed every third of it, so less would be a KV write storm. */
export const MIN_CLUSTER_PRESENCE_TTL_MS = 1_000;
/** Longest presence TTL: a dead node's members linger this long. */
export const MAX_CLUSTER_PRESENCE_TTL_MS = 86_400_000;
