/**
 * Channel metrics, registered on the server's registry (src/server/metrics.ts):
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `brook_channels` | gauge, read per scrape | (channels held in memory) |
 * | `brook_channel_subscriptions` | gauge, read per scrape | (WebSocket and SSE subscriptions) |
 * | `brook_realtime_closed_total` | counter | reason (`SLOW_CLIENT`, `HEARTBEAT_TIMEOUT`, `TOKEN_EXPIRED`, …: server-initiated closes) |
 * | `brook_channel_cluster_live_messages_total` | counter, read per scrape | (messages received on live subjects; channel cluster only) |
 * | `brook_channel_cluster_gaps_total` | counter, read per scrape | (live messages that did not follow the chain: each starts a fill) |
 * | `brook_channel_cluster_filled_messages_total` | counter, read per scrape | (messages read back from the stream by filling) |
 * | `brook_channel_cluster_holes_total` | counter, read per scrape | (fills that found messages gone from the stream: ≥ 1 lost each) |
 * | `brook_channel_cluster_presence_entries` | gauge, read per scrape | (presence entries held, every node's) |
 *
 * The `brook_channel_cluster_*` series exist only on a server with `channels.cluster`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ChannelHub } from '../../channels/index.js';
import type { CloseReason } from '../errors.js';

export interface RealtimeMetrics {
  /** The server closed a realtime connection for `reason`. */
  closed(reason: CloseReason): void;
}

const CLUSTER_COUNTERS = [
  ['brook_channel_cluster_live_messages_total', 'Channel messages this node received on the backplane\'s live subjects.', 'liveMessages'],
  ['brook_channel_cluster_gaps_total', 'Live channel messages that did not follow the last one delivered (a missed message): each makes the node read the stream.', 'gaps'],
  ['brook_channel_cluster_filled_messages_total', 'Channel messages read back from the stream after a gap and delivered.', 'filledMessages'],
  ['brook_channel_cluster_holes_total', 'Gap fills that found the stream no longer held the messages missed (history limit or age): at least one message lost each.', 'holes'],
] as const;
const NAMES = [
  'brook_channels',
  'brook_channel_subscriptions',
  'brook_realtime_closed_total',
  'brook_channel_cluster_presence_entries',
  ...CLUSTER_COUNTERS.map(([name]) => name),
];

/** Registers (or, for a registry shared by an earlier server, re-registers) the channel metrics. */
export function registerRealtimeMetrics(registry: Registry, hub: ChannelHub): RealtimeMetrics {
  for (const name of NAMES) if (registry.getSingleMetric(name) !== undefined) registry.removeSingleMetric(name);
  const registers = [registry];
  new Gauge({
    name: 'brook_channels',
    help: 'Channels held in memory (with subscribers or history).',
    registers,
    collect() {
      this.set(hub.stats().channels);
    },
  });
  new Gauge({
    name: 'brook_channel_subscriptions',
    help: 'Channel subscriptions of WebSocket connections and SSE streams.',
    registers,
    collect() {
      this.set(hub.stats().subscriptions);
    },
  });
  if (hub.stats().cluster !== null) {
    for (const [name, help, field] of CLUSTER_COUNTERS) {
      let seen = 0;
      const counter: Counter = new Counter({
        name,
        help,
        registers,
        collect: () => {
          // The hub counts; the counter follows (the hub's counts never decrease).
          const now = hub.stats().cluster?.[field] ?? seen;
          if (now > seen) counter.inc(now - seen);
          seen = Math.max(seen, now);
        },
      });
    }
    new Gauge({
      name: 'brook_channel_cluster_presence_entries',
      help: 'Channel presence entries held by this node, of every node of the cluster.',
      registers,
      collect() {
        this.set(hub.stats().cluster?.presenceEntries ?? 0);
      },
    });
  }
  const closes = new Counter({
    name: 'brook_realtime_closed_total',
    help: 'Realtime connections closed by the server, by reason (SLOW_CLIENT is the outbound-queue eviction).',
    labelNames: ['reason'],
    registers,
  });
  return { closed: (reason) => closes.inc({ reason }) };
}
