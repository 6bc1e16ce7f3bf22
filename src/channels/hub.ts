/**
 * The channel hub: namespaces, channels, publish, subscribe with recovery, presence and history
 * (docs/channels.md). Transport-free: WebSocket and SSE connections are {@link Subscriber}s.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import { authorizeChannel, type ChannelIdentity } from './capabilities.js';
import { Channel, type Recovery, type StreamPosition } from './channel.js';
import { recoverClustered, recoverWith, type Prefetched } from './recovery.js';
import { JetStreamChannelCluster, type ChannelClusterStats, type ClusterBackplane } from './cluster.js';
import { ClusterPresence } from './cluster-presence.js';
import {
  DEFAULT_CLUSTER_PRESENCE_TTL_MS,
  DEFAULT_MAX_CHANNELS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_PENDING_PUBLISHES,
  DEFAULT_MAX_REBUILD_RECORDS,
  DEFAULT_SWEEP_MS,
  MAX_RECOVERY,
} from './defaults.js';
import { DurableLog } from './durable-log.js';
import { ChannelError } from './errors.js';
import { DEFAULT_NAMESPACES, resolveNamespaces, type Namespace, type NamespaceInput } from './namespaces.js';
import { parseChannelName, type ChannelName } from './names.js';
import { Publication } from './publication.js';
import { RowFilter } from './row-filter.js';
import type { PresenceEntry, Subscriber } from './subscriber.js';
import { toPublication, TopicTailer } from './topic-tailer.js';

export interface ChannelHubOptions {
  /** An opened engine (durable namespaces and topic channels use it). */
  readonly engine: Engine;
  readonly logger: Logger;
  /** @defaultValue DEFAULT_NAMESPACES (chat, user, topic) */
  readonly namespaces?: readonly NamespaceInput[];
  /** @defaultValue 1_000_000 */
  readonly maxChannels?: number;
  /** @defaultValue 64 KiB */
  readonly maxMessageBytes?: number;
  /** @defaultValue 1_000_000 */
  readonly maxRebuildRecords?: number;
  /** @defaultValue 10_000 */
  readonly maxPendingPublishes?: number;
  /** @defaultValue 16 MiB */
  readonly maxPendingBytes?: number;
  /** @defaultValue 30_000 */
  readonly sweepMs?: number;
  /** @defaultValue Date.now */
  readonly now?: () => number;
  /**
   * Share every channel (but topic channels, which read the shared log anyway) with the other
   * Brook nodes on this JetStream backplane (docs/channels.md, "Several nodes"). @defaultValue single-node
   */
  readonly cluster?: ClusterBackplane;
  /** With `cluster`: how long a presence entry outlives its node. @defaultValue 30_000 */
  readonly presenceTtlMs?: number;
}

export interface PublishResult {
  readonly offset: number;
  readonly epoch: string;
}

export interface SubscribeRequest {
  readonly channel: string;
  readonly since?: StreamPosition | undefined;
  /** A row filter (docs/channels.md, "Row filters"), validated here: only matching messages are delivered. */
  readonly filter?: unknown;
}

export type SubscribeResult =
  | { readonly channel: string; readonly ok: Recovery & { readonly presenceFull?: boolean }; readonly error?: undefined }
  | { readonly channel: string; readonly ok?: undefined; readonly error: ChannelError };

export interface HistoryResult {
  readonly epoch: string;
  readonly offset: number;
  readonly publications: readonly Publication[];
  /** False when `since` is older than what is retained (or from another epoch). */
  readonly recovered: boolean;
}

export interface PresenceResult {
  readonly count: number;
  readonly clients: readonly PresenceEntry[];
}

export interface HubStats {
  readonly channels: number;
  readonly subscriptions: number;
  /** With `cluster`: the backplane's counters and the presence entries held (every node's); else null. */
  readonly cluster: (ChannelClusterStats & { readonly presenceEntries: number }) | null;
}

export class ChannelHub {
  private readonly namespaces: Map<string, Namespace>;
  private readonly channels = new Map<string, Channel>();
  private readonly durable = new Map<string, DurableLog>();
  private readonly tailers = new Map<Channel, TopicTailer>();
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly maxChannels: number;
  readonly maxMessageBytes: number;
  private sweepTimer: NodeJS.Timeout | undefined;
  private subscriptions = 0;
  private readonly cluster: JetStreamChannelCluster | null;
  private readonly clusterPresence: ClusterPresence | null;

  constructor(private readonly options: ChannelHubOptions) {
    this.namespaces = resolveNamespaces(options.namespaces ?? DEFAULT_NAMESPACES);
    this.logger = options.logger.child({ component: 'channels' });
    this.now = options.now ?? Date.now;
    this.maxChannels = options.maxChannels ?? DEFAULT_MAX_CHANNELS;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.cluster =
      options.cluster === undefined
        ? null
        : new JetStreamChannelCluster(options.cluster, this.logger, options.maxPendingPublishes ?? DEFAULT_MAX_PENDING_PUBLISHES);
    this.clusterPresence =
      options.cluster === undefined
        ? null
        : new ClusterPresence(
            options.cluster.nc,
            `${options.cluster.prefix}_presence`,
            options.cluster.replicas,
            options.presenceTtlMs ?? DEFAULT_CLUSTER_PRESENCE_TTL_MS,
            newEpoch(),
            {
              channel: (name) => this.channels.get(name),
              maxPresence: (name) => {
                try {
                  return this.namespaces.get(parseChannelName(name).namespace)?.maxPresence ?? 0;
                } catch {
                  return 0;
                }
              },
            },
            this.logger,
          );
    for (const ns of this.namespaces.values()) {
      // Clustered namespaces keep their history in their JetStream stream.
      if (!ns.durable || this.cluster !== null) continue;
      const limits = {
        maxPendingPublishes: options.maxPendingPublishes ?? DEFAULT_MAX_PENDING_PUBLISHES,
        maxPendingBytes: options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
        maxRebuildRecords: options.maxRebuildRecords ?? DEFAULT_MAX_REBUILD_RECORDS,
      };
      this.durable.set(ns.name, new DurableLog(options.engine, ns, limits, this.logger));
    }
  }

  /** Creates durable topics and rebuilds durable channels' offsets, epochs and history. */
  async open(): Promise<void> {
    const now = this.now();
    await this.cluster?.open([...this.namespaces.values()].filter((ns) => !ns.topicSource));
    await this.clusterPresence?.open();
    for (const [name, log] of this.durable) {
      await log.open();
      const ns = this.namespaces.get(name)!;
      let messages = 0;
      for await (const page of log.rebuild(now)) {
        for (const m of page) {
          let parsed: ChannelName;
          try {
            parsed = parseChannelName(m.channel);
          } catch {
            continue; // a foreign record in the topic; rebuild() counts what it cannot read
          }
          if (parsed.namespace !== name) continue;
          let channel = this.channels.get(m.channel);
          if (channel === undefined || channel.epoch !== m.epoch || m.offset < channel.next) {
            // A new incarnation of the channel (a later epoch) replaces what came before.
            if (channel === undefined && this.channels.size >= this.maxChannels) continue;
            channel = new Channel(parsed, ns, m.epoch, m.offset);
            this.channels.set(m.channel, channel);
          }
          channel.next = m.offset + 1;
          channel.history.push(new Publication(m.offset, m.data, m.timestamp));
          messages++;
        }
      }
      this.logger.info({ namespace: name, topic: log.topic, messages, channels: this.channels.size }, 'durable channels rebuilt');
    }
    const sweepMs = this.options.sweepMs ?? DEFAULT_SWEEP_MS;
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  /** Stops tailers and the sweep. Subscribers are the transports' to close. */
  close(): void {
    clearInterval(this.sweepTimer);
    this.cluster?.close();
    void this.clusterPresence?.close();
    for (const tailer of this.tailers.values()) tailer.stop();
    this.tailers.clear();
  }

  stats(): HubStats {
    const cluster = this.cluster === null ? null : { ...this.cluster.stats(), presenceEntries: this.clusterPresence?.size ?? 0 };
    return { channels: this.channels.size, subscriptions: this.subscriptions, cluster };
  }

  /** Parses a name and finds its namespace; throws INVALID_CHANNEL / UNKNOWN_CHANNEL. */
  resolve(name: string): { readonly name: ChannelName; readonly namespace: Namespace } {
    const parsed = parseChannelName(name);
    const namespace = this.namespaces.get(parsed.namespace);
    if (namespace === undefined) {
      throw new ChannelError('UNKNOWN_CHANNEL', `channel ${JSON.stringify(name)} is in no configured namespace ("${parsed.namespace}")`);
    }
    if (namespace.topicSource) topicOf(parsed);
    return { name: parsed, namespace };
  }

  /**
   * Publishes `data` (JSON text) to a channel. Memory namespaces fan out at once (the result is
   * not a promise); durable ones after the append is durable.
   */
  publish(identity: ChannelIdentity, name: string, data: string, from: 'client' | 'server'): PublishResult | Promise<PublishResult> {
    // A live channel already knows its parsed name and namespace.
    const known = this.channels.get(name);
    const { name: parsed, namespace } = known === undefined ? this.resolve(name) : { name: known.name, namespace: known.namespace };
    authorizeChannel(identity, 'publish', parsed);
    if (namespace.topicSource) throw new ChannelError('FORBIDDEN', `channel ${JSON.stringify(name)} is a log topic; produce to the topic instead`);
    if (from === 'client' && !namespace.clientPublish) {
      throw new ChannelError('FORBIDDEN', `clients may not publish to channel ${JSON.stringify(name)} (namespace "${namespace.name}" is server-published)`);
    }
    if (data.length > this.maxMessageBytes && Buffer.byteLength(data) > this.maxMessageBytes) {
      throw new ChannelError('MESSAGE_TOO_LARGE', `message data is larger than ${this.maxMessageBytes} bytes`);
    }
    const log = this.durable.get(namespace.name);
    if (log?.full) throw new ChannelError('RATE_LIMITED', `too many publishes waiting for the disk in namespace "${namespace.name}"`, 100);
    const channel = this.channelFor(parsed, namespace);
    if (this.cluster !== null) return this.publishClustered(this.cluster, channel, data);
    const pub = new Publication(channel.next++, data, this.now());
    if (log === undefined) {
      channel.commit(pub);
      return { offset: pub.offset, epoch: channel.epoch };
    }
    const epoch = channel.epoch;
    return log.append(channel, pub).then(() => ({ offset: pub.offset, epoch }));
  }

  /**
   * Subscribes `subscriber` to several channels. Authorization and (for topic channels) loading
   * happen first; then, in one synchronous block, every channel computes what the subscriber
   * missed, the subscriber joins, and `joined` is called — so the caller writes its reply and the
   * missed publications before any live one can be delivered.
   */
  async subscribe(
    identity: ChannelIdentity,
    subscriber: Subscriber,
    requests: readonly SubscribeRequest[],
    joined: (results: SubscribeResult[]) => void,
  ): Promise<void> {
    type Prepared =
      | { readonly request: SubscribeRequest; readonly channel: Channel; readonly prefetched: Prefetched; readonly filter: RowFilter | null }
      | { readonly request: SubscribeRequest; readonly error: ChannelError };
    const prepared = await Promise.all(
      requests.map(async (request): Promise<Prepared> => {
        try {
          const { name, namespace } = this.resolve(request.channel);
          authorizeChannel(identity, 'subscribe', name);
          if (namespace.topicSource) authorizeTopic(identity, name);
          // Checked after the permissions, so a bad filter says nothing about a channel one may not read.
          const filter = request.filter === undefined ? null : RowFilter.parse(request.filter);
          const channel = this.channelFor(name, namespace);
          const prefetched = namespace.topicSource
            ? await this.prepareTopic(channel, request.since)
            : this.cluster !== null
              ? await this.prepareClustered(this.cluster, channel, request.since)
              : null;
          return { request, channel, prefetched, filter };
        } catch (err) {
          return { request, error: asChannelError(err, request.channel) };
        }
      }),
    );
    const now = this.now();
    const results: SubscribeResult[] = [];
    const joins: Channel[] = [];
    for (const p of prepared) {
      if ('error' in p) {
        results.push({ channel: p.request.channel, error: p.error });
        continue;
      }
      if (!subscriber.active) {
        this.release(p.channel);
        continue;
      }
      const recovered =
        this.cluster !== null && !p.channel.namespace.topicSource
          ? recoverClustered(p.channel, p.request.since, p.prefetched)
          : recoverWith(p.channel, p.request.since, p.prefetched === 'lost' ? [] : p.prefetched, now);
      const recovery = p.filter === null ? recovered : { ...recovered, missed: Channel.visible(recovered.missed, p.filter) };
      p.channel.setFilter(subscriber, p.filter);
      if (!p.channel.subscribers.has(subscriber)) {
        p.channel.subscribers.add(subscriber);
        this.subscriptions++;
      }
      const presenceFull = p.channel.namespace.presence && !p.channel.hasPresenceRoom(subscriber.presence.client);
      if (p.channel.namespace.presence && !presenceFull) joins.push(p.channel);
      results.push({ channel: p.request.channel, ok: presenceFull ? { ...recovery, presenceFull } : recovery });
    }
    if (!subscriber.active) return;
    joined(results);
    // After the reply, so the subscriber's own join event follows its `subscribed` answer.
    const entry = subscriber.presence;
    for (const channel of joins) {
      channel.join(entry);
      this.clusterPresence?.join(channel.name.name, entry);
    }
  }

  /** Removes the subscriber (and its presence) from a channel; a no-op when not subscribed. */
  unsubscribe(subscriber: Subscriber, name: string): boolean {
    const channel = this.channels.get(name);
    if (channel === undefined || !channel.subscribers.delete(subscriber)) return false;
    channel.setFilter(subscriber, null);
    this.subscriptions--;
    if (channel.namespace.presence) {
      channel.leave(subscriber.presence.client);
      this.clusterPresence?.leave(name, subscriber.presence.client);
    }
    this.release(channel);
    return true;
  }

  /** Publications after `since` (-1: all retained), at most `limit`. */
  async history(identity: ChannelIdentity, name: string, since: number, limit: number): Promise<HistoryResult> {
    const { name: parsed, namespace } = this.resolve(name);
    authorizeChannel(identity, 'history', parsed);
    if (namespace.topicSource) authorizeTopic(identity, parsed);
    const bounded = Math.max(1, Math.min(limit, MAX_RECOVERY));
    if (namespace.topicSource) {
      const { topic, partition } = topicOf(parsed);
      const wm = await this.options.engine.watermarks(topic, partition).catch((err: unknown) => {
        throw asChannelError(err, name);
      });
      const from = since + 1;
      if (from < wm.lowWatermark || from > wm.highWatermark) {
        return { epoch: topicEpoch(partition), offset: wm.highWatermark - 1, publications: [], recovered: false };
      }
      const page = await this.options.engine.read(topic, partition, from, { maxRecords: bounded });
      return { epoch: topicEpoch(partition), offset: wm.highWatermark - 1, publications: page.records.map(toPublication), recovered: true };
    }
    if (this.cluster !== null) return this.historyClustered(this.cluster, parsed, namespace, since, bounded);
    const channel = this.channels.get(name);
    if (channel === undefined) return { epoch: '', offset: -1, publications: [], recovered: since < 0 };
    channel.history.trim(this.now());
    const first = channel.history.firstOffset();
    const recovered = since >= channel.top || (first !== null && first <= since + 1);
    return { epoch: channel.epoch, offset: channel.top, publications: channel.history.after(since, bounded), recovered };
  }

  presence(identity: ChannelIdentity, name: string): PresenceResult {
    const { name: parsed } = this.resolve(name);
    authorizeChannel(identity, 'presence', parsed);
    if (this.clusterPresence !== null) {
      const held = this.clusterPresence.entries(name);
      return { count: held?.size ?? 0, clients: held ? [...held.values()].map((h) => h.entry) : [] };
    }
    const map = this.channels.get(name)?.presence;
    return { count: map?.size ?? 0, clients: map ? [...map.values()] : [] };
  }

  /** The channel's current position (for SSE `subscribed` and tests). */
  position(name: string): { readonly offset: number; readonly epoch: string } | null {
    const channel = this.channels.get(name);
    return channel ? { offset: channel.top, epoch: channel.epoch } : null;
  }

  private channelFor(name: ChannelName, namespace: Namespace): Channel {
    const existing = this.channels.get(name.name);
    if (existing !== undefined) return existing;
    if (this.channels.size >= this.maxChannels) {
      throw new ChannelError('CHANNEL_LIMIT', `the server holds its maximum of ${this.maxChannels} channels; retry later`, 1000);
    }
    const clustered = this.cluster !== null && !namespace.topicSource;
    const epoch = namespace.topicSource ? topicEpoch(topicOf(name).partition) : clustered ? this.cluster!.epoch(namespace) : newEpoch();
    const channel = new Channel(name, namespace, epoch);
    this.channels.set(name.name, channel);
    if (clustered) {
      for (const held of this.clusterPresence?.entries(name.name)?.values() ?? []) channel.join(held.entry);
      this.cluster!.attach(channel).catch((err: unknown) => {
        this.logger.error({ err, channel: name.name }, 'clustered channel could not attach');
        if (channel.subscribers.size === 0 && this.channels.get(name.name) === channel) this.drop(channel);
      });
    }
    return channel;
  }

  /** Clustered: stored in the namespace's stream, delivered (here too) when it comes back live. */
  private publishClustered(cluster: JetStreamChannelCluster, channel: Channel, data: string): Promise<PublishResult> {
    channel.pending++;
    const now = this.now();
    return cluster
      .attach(channel)
      .then(() => cluster.publish(channel, data, now))
      .then(
        (offset) => ({ offset, epoch: channel.epoch }),
        (err: unknown) => {
          throw asChannelError(err, channel.name.name);
        },
      )
      .finally(() => channel.pending--);
  }

  /** Clustered: waits for the channel's offset, and for an older `since` reads the stream. */
  private async prepareClustered(cluster: JetStreamChannelCluster, channel: Channel, since: StreamPosition | undefined): Promise<Prefetched> {
    try {
      await cluster.attach(channel);
      if (since === undefined || (since.epoch !== undefined && since.epoch !== channel.epoch) || since.offset >= channel.top) return null;
      return (await cluster.recover(channel, since.offset, MAX_RECOVERY)) ?? 'lost';
    } catch (err) {
      throw asChannelError(err, channel.name.name);
    }
  }

  private async historyClustered(
    cluster: JetStreamChannelCluster,
    parsed: ChannelName,
    namespace: Namespace,
    since: number,
    limit: number,
  ): Promise<HistoryResult> {
    const channel = this.channelFor(parsed, namespace);
    try {
      await cluster.attach(channel);
      if (since >= channel.top) return { epoch: channel.epoch, offset: channel.top, publications: [], recovered: since === channel.top };
      const pubs = await cluster.recover(channel, since, limit);
      return { epoch: channel.epoch, offset: channel.top, publications: pubs ?? [], recovered: pubs !== null };
    } catch (err) {
      throw asChannelError(err, parsed.name);
    }
  }

  private drop(channel: Channel): void {
    this.channels.delete(channel.name.name);
    this.cluster?.detach(channel);
  }

  /** Starts the tailer of a topic channel and, for an old `since`, reads what history lacks. */
  private async prepareTopic(channel: Channel, since: StreamPosition | undefined): Promise<Prefetched> {
    let tailer = this.tailers.get(channel);
    if (tailer === undefined) {
      const { topic, partition } = topicOf(channel.name);
      tailer = new TopicTailer(this.options.engine, topic, partition, channel, this.logger, (err) => this.failTopic(channel, err));
      this.tailers.set(channel, tailer);
    }
    try {
      await tailer.ready;
    } catch (err) {
      this.tailers.delete(channel);
      tailer.stop();
      if (channel.subscribers.size === 0) this.channels.delete(channel.name.name);
      throw asChannelError(err, channel.name.name);
    }
    if (since === undefined || (since.epoch !== undefined && since.epoch !== channel.epoch)) return null;
    const first = channel.history.firstOffset() ?? channel.next;
    if (since.offset + 1 >= first) return null;
    // Older than the window: read the log from since+1 up to the window (bounded).
    const { topic, partition } = topicOf(channel.name);
    const out: Publication[] = [];
    let offset = since.offset + 1;
    try {
      while (offset < first && out.length < MAX_RECOVERY) {
        const page = await this.options.engine.read(topic, partition, offset, { maxRecords: Math.min(1000, MAX_RECOVERY - out.length) });
        for (const r of page.records) out.push(toPublication(r));
        if (page.nextOffset <= offset) break;
        offset = page.nextOffset;
      }
    } catch {
      return []; // below the low watermark (retention): recoverWith answers recovered:false
    }
    return out;
  }

  /** The tailer stopped (topic deleted, storage failure): every subscriber is told, the channel dropped. */
  private failTopic(channel: Channel, err: unknown): void {
    this.tailers.delete(channel);
    this.channels.delete(channel.name.name);
    const error = asChannelError(err, channel.name.name);
    const subscribers = [...channel.subscribers];
    channel.subscribers.clear();
    this.subscriptions -= subscribers.length;
    for (const s of subscribers) s.ended(channel, error);
  }

  /** Drops a channel that has nothing left worth keeping. */
  private release(channel: Channel): void {
    if (channel.subscribers.size > 0) return;
    const tailer = this.tailers.get(channel);
    if (tailer !== undefined) {
      tailer.stop();
      this.tailers.delete(channel);
      this.channels.delete(channel.name.name);
    }
  }

  /** Drops channels without subscribers whose history has expired (memory stays bounded by use). */
  private sweep(): void {
    const now = this.now();
    for (const channel of this.channels.values()) {
      if (channel.subscribers.size > 0 || channel.pending > 0) continue;
      channel.history.trim(now);
      if (channel.history.size === 0) this.drop(channel);
    }
  }
}

/** `topic:<topic>[~<partition>]` → the topic and partition. */
function topicOf(name: ChannelName): { readonly topic: string; readonly partition: number } {
  const tilde = name.rest.lastIndexOf('~');
  const topic = tilde === -1 ? name.rest : name.rest.slice(0, tilde);
  const partition = tilde === -1 ? 0 : Number(name.rest.slice(tilde + 1));
  if (!/^[a-zA-Z0-9._-]{1,249}$/.test(topic) || topic.startsWith('__') || !Number.isSafeInteger(partition) || partition < 0) {
    throw new ChannelError('INVALID_CHANNEL', `channel ${JSON.stringify(name.name)} does not name a topic: use <namespace>:<topic>[~<partition>]`);
  }
  return { topic, partition };
}

/** A topic channel also needs the topic's `read` permission (the message never says whether it exists). */
function authorizeTopic(identity: ChannelIdentity, name: ChannelName): void {
  if (identity.unrestricted || identity.canReadTopic === undefined) return;
  if (!identity.canReadTopic(topicOf(name).topic)) {
    throw new ChannelError('FORBIDDEN', `not allowed to subscribe channel ${JSON.stringify(name.name)}: the token cannot read its topic`);
  }
}

function topicEpoch(partition: number): string {
  return `t${partition}`;
}

function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** Errors thrown while preparing a subscription, as channel errors with stable codes. */
function asChannelError(err: unknown, channel: string): ChannelError {
  if (err instanceof ChannelError) return err;
  const code = err instanceof Error && 'code' in err ? (err as { code: unknown }).code : undefined;
  if (code === 'TOPIC_NOT_FOUND' || code === 'PARTITION_NOT_FOUND') {
    return new ChannelError('UNKNOWN_CHANNEL', `channel ${JSON.stringify(channel)}: ${(err as Error).message}`, undefined, { cause: err });
  }
  return new ChannelError('STORAGE_ERROR', `channel ${JSON.stringify(channel)} cannot be read`, undefined, { cause: err });
}
