/**
 * Presence shared by the nodes of a channel cluster (docs/channels.md, "Several nodes"): each node
 * puts its own entries into a KV bucket whose max_age is the presence TTL and re-puts them every
 * TTL/3; every node watches the bucket and keeps the entries of all nodes. A delete is a leave; an
 * entry not refreshed within the TTL (its node died) is dropped by every node's sweep, which also
 * announces the leave (JetStream's age limit removes it silently, so the sweep is what tells).
 */
import { StorageType, type KV, type KvEntry, type NatsConnection, type QueuedIterator } from 'nats';
import type { Logger } from 'pino';
import type { Channel } from './channel.js';
import type { PresenceEntry } from './subscriber.js';

/** Channels whose remote presence is held; past it, entries of new channels are ignored (logged once). */
const MAX_PRESENCE_CHANNELS = 100_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Held {
  readonly entry: PresenceEntry;
  readonly node: string;
  seenAt: number;
}

interface Stored {
  readonly client: string;
  readonly user: string;
  readonly info: string | null;
  readonly node: string;
}

export interface PresenceHooks {
  /** The local channel object, if this node has one (to announce joins and leaves to its subscribers). */
  readonly channel: (name: string) => Channel | undefined;
  /** Presence entries a channel may hold. */
  readonly maxPresence: (name: string) => number;
}

export class ClusterPresence {
  private kv: KV | null = null;
  private watcher: QueuedIterator<KvEntry> | null = null;
  private watching: Promise<void> = Promise.resolve();
  /** Channel name → client → entry, every node's. */
  private readonly held = new Map<string, Map<string, Held>>();
  /** This node's entries: key → value, re-put every TTL/3. */
  private readonly own = new Map<string, Uint8Array>();
  private timer: NodeJS.Timeout | undefined;
  private warnedFull = false;
  /** Entries in `held`, across channels. */
  private count = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly replicas: number,
    private readonly ttlMs: number,
    private readonly node: string,
    private readonly hooks: PresenceHooks,
    private readonly logger: Logger,
  ) {}

  async open(): Promise<void> {
    const kv = await this.nc.jetstream().views.kv(this.bucket, { history: 1, replicas: this.replicas, storage: StorageType.Memory, ttl: this.ttlMs });
    this.kv = kv;
    const watcher = await kv.watch({ key: '>' });
    this.watcher = watcher;
    this.watching = (async () => {
      for await (const e of watcher) this.apply(e);
    })().catch((err: unknown) => this.logger.error({ err }, 'presence watch stopped; presence on other nodes is not seen'));
    this.timer = setInterval(() => this.tick(), Math.max(50, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.watcher?.stop();
    await this.watching;
  }

  /** Presence entries held, of every node, across channels. */
  get size(): number {
    return this.count;
  }

  /** Entries of a channel across the cluster (null when none are known). */
  entries(name: string): ReadonlyMap<string, Held> | undefined {
    return this.held.get(name);
  }

  /** A local subscriber joined: stored for every node. */
  join(channel: string, entry: PresenceEntry): void {
    const key = keyOf(channel, entry.client);
    const value = encoder.encode(JSON.stringify({ client: entry.client, user: entry.user, info: entry.info ?? null, node: this.node } satisfies Stored));
    this.own.set(key, value);
    this.remember(channel, entry, this.node, Date.now());
    this.put(key, value);
  }

  /** A local subscriber left. */
  leave(channel: string, client: string): void {
    const key = keyOf(channel, client);
    this.own.delete(key);
    this.forget(channel, client);
    this.kv?.delete(key).catch((err: unknown) => this.logger.warn({ err, channel }, 'presence leave not stored; it expires with the TTL'));
  }

  private put(key: string, value: Uint8Array): void {
    this.kv?.put(key, value).catch((err: unknown) => this.logger.warn({ err }, 'presence entry not stored'));
  }

  private apply(e: KvEntry): void {
    const parsed = parseKey(e.key);
    if (parsed === null) return;
    const [channel, client] = parsed;
    if (e.operation !== 'PUT') {
      this.forget(channel, client);
      return;
    }
    let stored: Stored;
    try {
      stored = JSON.parse(decoder.decode(e.value)) as Stored;
    } catch {
      return; // not a presence entry
    }
    if (typeof stored.client !== 'string' || typeof stored.user !== 'string' || typeof stored.node !== 'string') return;
    const entry: PresenceEntry = { client: stored.client, user: stored.user, info: typeof stored.info === 'string' ? stored.info : undefined };
    this.remember(channel, entry, stored.node, e.created.getTime());
  }

  private remember(channel: string, entry: PresenceEntry, node: string, seenAt: number): void {
    let map = this.held.get(channel);
    if (map === undefined) {
      if (this.held.size >= MAX_PRESENCE_CHANNELS) {
        if (!this.warnedFull) this.logger.warn({ max: MAX_PRESENCE_CHANNELS }, 'presence of more channels than held; new ones are not listed');
        this.warnedFull = true;
        return;
      }
      map = new Map();
      this.held.set(channel, map);
    }
    const held = map.get(entry.client);
    if (held !== undefined) {
      held.seenAt = Math.max(held.seenAt, seenAt);
      return;
    }
    if (map.size >= this.hooks.maxPresence(channel)) return;
    map.set(entry.client, { entry, node, seenAt });
    this.count++;
    this.hooks.channel(channel)?.join(entry);
  }

  private forget(channel: string, client: string): void {
    const map = this.held.get(channel);
    if (map === undefined || !map.delete(client)) return;
    this.count--;
    if (map.size === 0) this.held.delete(channel);
    this.hooks.channel(channel)?.leave(client);
  }

  /** Refreshes this node's entries; drops other nodes' entries not refreshed within the TTL. */
  private tick(): void {
    for (const [key, value] of this.own) this.put(key, value);
    const cutoff = Date.now() - this.ttlMs;
    for (const [channel, map] of this.held) {
      for (const [client, held] of map) {
        if (held.node !== this.node && held.seenAt < cutoff) this.forget(channel, client);
      }
    }
  }
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`: channel and client base64url-encoded, joined by `.`. */
function keyOf(channel: string, client: string): string {
  return `${Buffer.from(channel).toString('base64url')}.${Buffer.from(client).toString('base64url')}`;
}

function parseKey(key: string): [string, string] | null {
  const dot = key.indexOf('.');
  if (dot <= 0) return null;
  return [Buffer.from(key.slice(0, dot), 'base64url').toString(), Buffer.from(key.slice(dot + 1), 'base64url').toString()];
}
