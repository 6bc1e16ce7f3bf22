/**
 * Channel metrics, registered on the server's registry (src/server/metrics.ts):
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `brook_channels` | gauge, read per scrape | (channels held in memory) |
 * | `brook_channel_subscriptions` | gauge, read per scrape | (WebSocket and SSE subscriptions) |
 * | `brook_realtime_closed_total` | counter | reason (`SLOW_CLIENT`, `HEARTBEAT_TIMEOUT`, `TOKEN_EXPIRED`, …: server-initiated closes) |
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ChannelHub } from '../../channels/index.js';
import type { CloseReason } from '../errors.js';

export interface RealtimeMetrics {
  /** The server closed a realtime connection for `reason`. */
  closed(reason: CloseReason): void;
}

const NAMES = ['brook_channels', 'brook_channel_subscriptions', 'brook_realtime_closed_total'];

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
  const closes = new Counter({
    name: 'brook_realtime_closed_total',
    help: 'Realtime connections closed by the server, by reason (SLOW_CLIENT is the outbound-queue eviction).',
    labelNames: ['reason'],
    registers,
  });
  return { closed: (reason) => closes.inc({ reason }) };
}
