import { HistoryRing } from './history.js';
import type { Namespace } from './namespaces.js';
import type { ChannelName } from './names.js';
import { PresenceEvent, type Publication } from './publication.js';
import type { RowFilter } from './row-filter.js';
import type { PresenceEntry, Subscriber } from './subscriber.js';

/** Where a reconnecting subscriber left off. */
export interface StreamPosition {
  /** The last offset the subscriber has; -1 for "everything retained". */
  readonly offset: number;
  /** The epoch it was read in; absent = not checked (SSE Last-Event-ID). */
  readonly epoch?: string | undefined;
}

/** The answer to one subscription (docs/channels.md, `subscribed` results). */
export interface Recovery {
  /** The channel's last offset (-1 when nothing was ever published in this epoch). */
  readonly offset: number;
  readonly epoch: string;
  /** Absent for a live-only subscription. */
  readonly recovered?: boolean;
  /** The publications the subscriber missed, oldest first (empty unless recovered). */
  readonly missed: readonly Publication[];
}

/**
 * One channel in memory: its offset sequence and epoch, bounded history, subscribers and
 * presence. Created on first use, dropped by the hub's sweep once it has neither subscribers nor
 * live history.
 */
export class Channel {
  readonly subscribers = new Set<Subscriber>();
  /** The offset the next publication gets. */
  next: number;
  readonly history: HistoryRing;
  /** Client id → entry; made on the first join. */
  presence: Map<string, PresenceEntry> | null = null;
  /** JSON-quoted name, reused by every encoded frame. */
  readonly quoted: string;
  /** Durable publications queued or being appended (the sweep keeps such a channel). */
  pending = 0;
  /** Row filters of the subscribers that have one; equal filters are one object (see RowFilter). */
  private filters: Map<Subscriber, RowFilter> | null = null;

  constructor(
    readonly name: ChannelName,
    readonly namespace: Namespace,
    public epoch: string,
    next = 0,
  ) {
    this.next = next;
    this.history = new HistoryRing(namespace.historySize, namespace.historyTtlMs);
    this.quoted = JSON.stringify(name.name);
  }

  /** Sets (or, with null, removes) a subscriber's row filter, sharing one object per distinct filter. */
  setFilter(subscriber: Subscriber, filter: RowFilter | null): void {
    if (filter === null) {
      this.filters?.delete(subscriber);
      if (this.filters?.size === 0) this.filters = null;
      return;
    }
    this.filters ??= new Map();
    let shared = filter;
    for (const existing of this.filters.values()) {
      if (existing.key === filter.key) {
        shared = existing;
        break;
      }
    }
    this.filters.set(subscriber, shared);
  }

  /** What a subscriber with `filter` receives of `pubs`. */
  static visible(pubs: readonly Publication[], filter: RowFilter | null): readonly Publication[] {
    return filter === null ? pubs : pubs.filter((p) => filter.matches(p));
  }

  get top(): number {
    return this.next - 1;
  }

  /** Adds a stored publication to the history and hands it to every subscriber. */
  commit(pub: Publication): void {
    this.history.push(pub);
    const filters = this.filters;
    for (const subscriber of this.subscribers) {
      const filter = filters?.get(subscriber);
      if (filter !== undefined && !filter.matches(pub)) continue;
      subscriber.deliver(this, pub);
    }
    // Encodings serve this fan-out only: history keeps the data, so an idle channel's history
    // costs its data once, not once per transport.
    pub.ws = undefined;
    pub.sse = undefined;
  }

  /**
   * What a subscriber that has `since` missed, computed from the history alone (synchronously,
   * so nothing can be published between this answer and the subscriber joining).
   */
  recover(since: StreamPosition | undefined, now: number): Recovery {
    const base = { offset: this.top, epoch: this.epoch };
    if (since === undefined) return { ...base, missed: [] };
    const lost = { ...base, recovered: false, missed: [] };
    if (since.epoch !== undefined && since.epoch !== this.epoch) return lost;
    if (since.offset > this.top) return lost;
    if (since.offset === this.top) return { ...base, recovered: true, missed: [] };
    this.history.trim(now);
    const first = this.history.firstOffset();
    if (first === null || first > since.offset + 1) return lost;
    return { ...base, recovered: true, missed: this.history.after(since.offset) };
  }

  /** Whether `client` is listed or could be. */
  hasPresenceRoom(client: string): boolean {
    return this.presence === null || this.presence.has(client) || this.presence.size < this.namespace.maxPresence;
  }

  /** Adds a presence entry; false when the channel's presence is full. */
  join(entry: PresenceEntry): boolean {
    this.presence ??= new Map();
    if (this.presence.has(entry.client)) return true;
    if (this.presence.size >= this.namespace.maxPresence) return false;
    this.presence.set(entry.client, entry);
    if (this.namespace.joinLeave) this.broadcast(new PresenceEvent('join', presenceFrame('join', this.quoted, entry)));
    return true;
  }

  leave(client: string): void {
    const entry = this.presence?.get(client);
    if (entry === undefined) return;
    this.presence!.delete(client);
    if (this.presence!.size === 0) this.presence = null;
    if (this.namespace.joinLeave) this.broadcast(new PresenceEvent('leave', presenceFrame('leave', this.quoted, entry)));
  }

  private broadcast(event: PresenceEvent): void {
    for (const subscriber of this.subscribers) subscriber.presenceEvent(this, event);
  }
}

function presenceFrame(kind: 'join' | 'leave', quotedChannel: string, entry: PresenceEntry): string {
  const info = entry.info === undefined || kind === 'leave' ? '' : `,"info":${entry.info}`;
  return `{"type":"${kind}","channel":${quotedChannel},"client":${JSON.stringify(entry.client)},"user":${JSON.stringify(entry.user)}${info}}`;
}
