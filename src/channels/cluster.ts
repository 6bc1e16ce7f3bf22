/**
 * Channels shared by several Brook nodes over JetStream (docs/channels.md, "Several nodes"): one
 * stream per namespace holds every channel's messages, the stream sequence is the offset, and the
 * stream republishes every stored message, in order, to a live subject that nodes with local
 * subscribers listen on, with the subject's previous sequence (`Nats-Last-Sequence`): the exact
 * per-channel chain, computed by JetStream, so publishers on any node need no coordination.
 */
import { headers, type JetStreamClient, type JetStreamManager, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import type { Logger } from 'pino';
import type { Channel } from './channel.js';
import { MAX_RECOVERY } from './defaults.js';
import { ChannelError } from './errors.js';
import type { Namespace } from './namespaces.js';
import { Publication } from './publication.js';
import { StreamBatchReader } from './stream-batch-reader.js';

/** More missing messages than this are read through a consumer in batches instead of one by one. */
const BATCH_AFTER = 8;
/** Messages per batch when a node catches up on a channel it fell behind on. */
const FILL_BATCH = 1_000;
/**
 * A fill that ends still behind what was seen live (a read that failed or came back short under
 * load) is tried again after 50 ms, doubling, at most this many times; past that the channel's
 * next live message starts a new one, as before.
 */
const REFILL_ATTEMPTS = 8;
const REFILL_BASE_MS = 50;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface ClusterBackplane {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly replicas: number;
}

/**
 * What the backplane did on this node since it started (counters, never reset), for
 * `brook_channel_cluster_*` (docs/channels.md, "Several nodes").
 */
export interface ChannelClusterStats {
  /** Messages received on live subjects (including ones only noted while filling). */
  readonly liveMessages: number;
  /** Live messages whose `Nats-Last-Sequence` was not the offset delivered last: each starts a fill. */
  readonly gaps: number;
  /** Messages read back from the stream by filling and delivered. */
  readonly filledMessages: number;
  /**
   * Fills that found the stream no longer held the message delivered last (history limit or
   * age): at least one message between it and the next one held was lost to this node. The exact
   * number is unknowable (offsets are shared by a namespace's channels and the messages are gone).
   */
  readonly holes: number;
}

/** Per-channel state of a clustered channel on this node. */
class LiveChannel {
  readonly ready: Promise<void>;
  initialized = false;
  /** Reading missed messages from the stream; live ones are noted, not delivered, meanwhile. */
  filling = false;
  /** Highest sequence seen live while not delivering (initializing or filling). */
  maxSeen = 0;
  /** The highest offset known stored. */
  head = 0;
  /** Publishes of this node to this channel waiting for their acknowledgement (pipelined, in order). */
  inFlight = 0;
  sub: Subscription | null = null;
  closed = false;
  /** Fills tried again in a row while behind (see REFILL_ATTEMPTS), and the timer of the next. */
  refills = 0;
  refillTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(init: (live: LiveChannel) => Promise<void>) {
    this.ready = init(this);
    this.ready.catch(() => undefined);
  }
}

/** JetStream direct get (`allow_direct` streams): no consumer, any replica answers. */
interface DirectApi {
  getMessage(
    stream: string,
    query: { readonly last_by_subj: string } | { readonly seq: number; readonly next_by_subj: string },
  ): Promise<{ readonly seq: number; readonly subject: string; readonly header: MsgHdrs; readonly data: Uint8Array; readonly time: Date }>;
}

/** A message read from the stream. */
interface Stored {
  readonly seq: number;
  readonly data: string;
  readonly timestamp: number;
  /** Published when its node saw the channel empty (`Brook-First`): recovery from offset 0 checks it. */
  readonly first: boolean;
}

export class JetStreamChannelCluster {
  private readonly js: JetStreamClient;
  private jsm: JetStreamManager | null = null;
  private readonly epochs = new Map<string, string>();
  private readonly live = new Map<Channel, LiveChannel>();
  private readonly logger: Logger;
  private readonly batches: StreamBatchReader;
  private readonly counts = { liveMessages: 0, gaps: 0, filledMessages: 0, holes: 0 };

  constructor(
    private readonly backplane: ClusterBackplane,
    logger: Logger,
    private readonly maxPendingPublishes: number,
  ) {
    this.js = backplane.nc.jetstream();
    this.batches = new StreamBatchReader(() => {
      if (this.jsm === null) throw new ChannelError('STORAGE_ERROR', 'channel cluster is not open');
      return this.jsm;
    }, this.js);
    this.logger = logger.child({ component: 'channel-cluster' });
  }

  /** Creates (or finds) the stream of each namespace and reads its epoch. */
  async open(namespaces: Iterable<Namespace>): Promise<void> {
    const jsm = await this.backplane.nc.jetstreamManager();
    this.jsm = jsm;
    for (const ns of namespaces) {
      const name = this.streamName(ns);
      const token = namespaceToken(ns.name);
      const config = {
        name,
        subjects: [`${this.subjectBase}.ch.${token}.*`],
        max_msgs_per_subject: Math.max(1, ns.historySize),
        max_age: ns.historyTtlMs * 1_000_000,
        storage: ns.durable ? 'file' : 'memory',
        num_replicas: this.backplane.replicas,
        allow_direct: true,
        republish: { src: `${this.subjectBase}.ch.${token}.*`, dest: `${this.subjectBase}.chl.${token}.{{wildcard(1)}}` },
      } as const;
      let created = '';
      let existing: Awaited<ReturnType<JetStreamManager['streams']['info']>> | null = null;
      try {
        existing = await jsm.streams.info(name);
      } catch {
        created = (await jsm.streams.add(config as never)).created;
      }
      if (existing !== null) {
        created = existing.created;
        const c = existing.config;
        if (c.max_msgs_per_subject !== config.max_msgs_per_subject || c.max_age !== config.max_age) {
          // The namespace's history settings changed: the first node to start with them applies them.
          await jsm.streams.update(name, { ...c, max_msgs_per_subject: config.max_msgs_per_subject, max_age: config.max_age }).catch((err: unknown) => {
            this.logger.warn({ err, stream: name }, 'could not apply the namespace history settings to its stream');
          });
        }
      }
      this.epochs.set(ns.name, `j${Date.parse(created).toString(36)}`);
    }
  }

  /** Stops every live subscription (the connection is the engine's). */
  close(): void {
    for (const live of this.live.values()) {
      live.closed = true;
      clearTimeout(live.refillTimer);
      live.sub?.unsubscribe();
    }
    this.live.clear();
  }

  stats(): ChannelClusterStats {
    return { ...this.counts };
  }

  /** The epoch of a namespace: its stream's identity (creation time). */
  epoch(ns: Namespace): string {
    return this.epochs.get(ns.name) ?? 'j0';
  }

  /** Starts live delivery of a channel on this node; resolves once its offset is known. */
  attach(channel: Channel): Promise<void> {
    let live = this.live.get(channel);
    if (live === undefined) {
      live = new LiveChannel((l) => this.init(channel, l));
      this.live.set(channel, live);
    }
    return live.ready;
  }

  /** Stops live delivery (the channel was dropped). */
  detach(channel: Channel): void {
    const live = this.live.get(channel);
    if (live === undefined) return;
    live.closed = true;
    clearTimeout(live.refillTimer);
    live.sub?.unsubscribe();
    this.live.delete(channel);
  }

  /**
   * Stores a message; resolves with its offset once JetStream has it (delivery comes live).
   * Pipelined: one connection's publishes are stored in the order they are sent.
   */
  publish(channel: Channel, data: string, now: number): Promise<number> {
    const live = this.live.get(channel);
    if (live === undefined) return Promise.reject(new ChannelError('STORAGE_ERROR', 'channel is not attached'));
    if (live.inFlight >= this.maxPendingPublishes) {
      return Promise.reject(new ChannelError('RATE_LIMITED', `too many publishes waiting for channel ${channel.quoted}`, 100));
    }
    const h = headers();
    h.set('Brook-Time', String(now));
    if (live.head === 0 && channel.top === 0 && live.inFlight === 0) h.set('Brook-First', '1');
    live.inFlight++;
    return this.js.publish(this.subjectOf(channel), encoder.encode(data), { headers: h }).then(
      (ack) => {
        live.inFlight--;
        if (ack.seq > live.head) live.head = ack.seq;
        return ack.seq;
      },
      (err: unknown) => {
        live.inFlight--;
        throw new ChannelError('STORAGE_ERROR', 'the message could not be stored', undefined, { cause: err });
      },
    );
  }

  /**
   * What a subscriber that has `since` missed, read from the stream: messages after `since`, at
   * most {@link MAX_RECOVERY}; null when the stream may no longer hold all of them. The stream
   * drops a subject's messages oldest first, so while the message at `since` is still there (and
   * is this channel's), everything after it is too.
   */
  async recover(channel: Channel, since: number, max: number): Promise<Publication[] | null> {
    if (!Number.isSafeInteger(since) || since < -1) return null;
    if (since > 0 && !(await this.holds(channel, since))) return null;
    const out: Publication[] = [];
    let seq = since + 1;
    const limit = Math.min(max, MAX_RECOVERY, channel.namespace.historySize);
    let prev = since;
    while (out.length < limit) {
      // The first read is one message (usually all there is); past it, this node's own newest
      // offset says whether many more are stored, worth reading in batches.
      const batch = await this.readFrom(channel, Math.max(seq, 1), limit - out.length, out.length > 0 && channel.top - seq > BATCH_AFTER);
      if (batch.length === 0) break;
      for (const m of batch) {
        // From "nothing yet" (0): the oldest message held must be the channel's first.
        if (out.length === 0 && since === 0 && !m.first) return null;
        out.push(toPublication(m, prev));
        prev = m.seq;
        seq = m.seq + 1;
      }
    }
    if (out.length === 0 && since < channel.top) return null;
    return out;
  }

  private async init(channel: Channel, live: LiveChannel): Promise<void> {
    const subject = `${this.subjectBase}.chl.${namespaceToken(channel.namespace.name)}.${channelToken(channel.name.name)}`;
    live.sub = this.backplane.nc.subscribe(subject, { callback: (err, msg) => (err === null ? this.onLive(channel, live, msg) : undefined) });
    // The subscription is in place before the last offset is read: nothing published after it is missed.
    await this.backplane.nc.flush();
    const last = await this.last(channel);
    if (live.closed) return;
    channel.next = last + 1;
    live.head = last;
    live.initialized = true;
    if (live.maxSeen > last) this.fill(channel, live);
  }

  private onLive(channel: Channel, live: LiveChannel, msg: Msg): void {
    const h = msg.headers;
    const seq = Number(h?.get('Nats-Sequence'));
    // The subject's previous sequence, set by JetStream when it republishes (0: the first).
    const prev = Number(h?.get('Nats-Last-Sequence'));
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(prev)) return; // not a channel message
    this.counts.liveMessages++;
    if (!live.initialized || live.filling) {
      if (seq > live.maxSeen) live.maxSeen = seq;
      return;
    }
    if (seq <= channel.top) return; // already delivered (read while filling)
    if (prev !== channel.top) {
      this.counts.gaps++;
      live.maxSeen = seq;
      this.fill(channel, live);
      return;
    }
    this.commit(channel, live, { seq, data: decoder.decode(msg.data), timestamp: Number(h?.get('Brook-Time')) || Date.now(), first: false });
  }

  /** Delivers the next message of the chain as this node sees it (`prev` = what it delivered before). */
  private commit(channel: Channel, live: LiveChannel, m: Stored): void {
    const pub = toPublication(m, channel.top);
    channel.next = m.seq + 1;
    if (m.seq > live.head) live.head = m.seq;
    channel.commit(pub);
  }

  /** Reads from the stream what the live subject skipped, then goes back to live delivery. */
  private fill(channel: Channel, live: LiveChannel): void {
    if (live.filling) return;
    live.filling = true;
    const run = async (): Promise<void> => {
      if (channel.top > 0 && !(await this.holds(channel, channel.top))) {
        // The stream dropped what came after (history limit) before this node read it: a hole.
        this.counts.holes++;
        this.logger.warn({ channel: channel.name.name, after: channel.top }, 'channel messages expired before this node read them');
      }
      let misses = 0;
      for (;;) {
        // maxSeen − top bounds what is missing (the namespace's channels share the sequence).
        const batch = await this.readFrom(channel, channel.top + 1, FILL_BATCH, live.maxSeen - channel.top > BATCH_AFTER);
        if (live.closed) return;
        if (batch.length === 0) {
          // A message seen live is stored (JetStream republishes after storing), so a miss means
          // it arrived with this very answer (read again) or was removed since (age, purge): give up.
          if (live.maxSeen <= channel.top || ++misses > 3) return;
          continue;
        }
        misses = 0;
        for (const m of batch) {
          if (m.seq <= channel.top) continue;
          this.counts.filledMessages++;
          this.commit(channel, live, m);
        }
      }
    };
    run()
      .catch((err: unknown) => this.logger.error({ err, channel: channel.name.name }, 'reading missed channel messages failed'))
      .finally(() => {
        live.filling = false;
        if (live.closed) return;
        if (live.maxSeen <= channel.top) live.refills = 0;
        // Still behind a message seen live: with no further live message nothing else would
        // start a fill, and the subscribers would wait for the channel's next message.
        else this.refillLater(channel, live);
      });
  }

  private refillLater(channel: Channel, live: LiveChannel): void {
    if (live.refillTimer !== undefined) return;
    if (live.refills >= REFILL_ATTEMPTS) {
      this.logger.warn({ channel: channel.name.name, after: channel.top, seen: live.maxSeen }, 'channel messages seen live could not be read from the stream');
      live.refills = 0;
      return;
    }
    const delay = REFILL_BASE_MS * 2 ** live.refills++;
    live.refillTimer = setTimeout(() => {
      live.refillTimer = undefined;
      if (!live.closed) this.fill(channel, live);
    }, delay);
  }

  private async last(channel: Channel): Promise<number> {
    try {
      const m = await this.direct().getMessage(this.streamName(channel.namespace), { last_by_subj: this.subjectOf(channel) });
      return m.seq;
    } catch (err) {
      if (isNotFound(err)) return 0;
      throw err;
    }
  }

  private async next(channel: Channel, seq: number): Promise<Stored | null> {
    try {
      const m = await this.direct().getMessage(this.streamName(channel.namespace), { seq, next_by_subj: this.subjectOf(channel) });
      return { seq: m.seq, data: decoder.decode(m.data), timestamp: Number(m.header.get('Brook-Time')) || m.time.getTime(), first: m.header.get('Brook-First') === '1' };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * This channel's stored messages at or after `from`: one by direct get, or, when `many` are
   * known to be missing, up to `max` through a short-lived consumer (stream-batch-reader.ts) —
   * unless the node already runs its maximum of those, when it is one by direct get again.
   */
  private async readFrom(channel: Channel, from: number, max: number, many: boolean): Promise<Stored[]> {
    const read = many ? await this.batches.read(this.streamName(channel.namespace), this.subjectOf(channel), from, max) : null;
    // Empty: the consumer's pull may have expired before anything came (a busy server); a
    // direct get tells whether there really is nothing.
    if (read === null || read.length === 0) {
      const m = await this.next(channel, from);
      return m === null ? [] : [m];
    }
    return read.map((m) => ({ seq: m.seq, data: decoder.decode(m.data), timestamp: m.timestamp, first: m.first }));
  }

  /** Whether the stream still holds this channel's message at `seq`. */
  private async holds(channel: Channel, seq: number): Promise<boolean> {
    const m = await this.next(channel, seq);
    return m !== null && m.seq === seq;
  }

  private direct(): DirectApi {
    if (this.jsm === null) throw new ChannelError('STORAGE_ERROR', 'channel cluster is not open');
    // nats.js 2.29 has the direct-get API (nats-server 2.9+) at runtime but does not export its type.
    return (this.jsm as unknown as { readonly direct: DirectApi }).direct;
  }

  private get subjectBase(): string {
    return `$BRK.${this.backplane.prefix}`;
  }

  private streamName(ns: Namespace): string {
    return `${this.backplane.prefix}_ch_${namespaceToken(ns.name)}`;
  }

  private subjectOf(channel: Channel): string {
    return `${this.subjectBase}.ch.${namespaceToken(channel.namespace.name)}.${channelToken(channel.name.name)}`;
  }
}

function toPublication(m: Stored, prev: number): Publication {
  const pub = new Publication(m.seq, m.data, m.timestamp);
  pub.prev = prev;
  return pub;
}

/** Namespace names are `[A-Za-z0-9._-]*`: `_` and `.` escaped, the empty one `_d`. */
function namespaceToken(name: string): string {
  return name === '' ? '_d' : name.replace(/[_.]/g, (c) => (c === '_' ? '_5F' : '_2E'));
}

/** Channel names never contain `_`, so replacing `.` (a subject separator) with it is injective. */
function channelToken(name: string): string {
  return name.replaceAll('.', '_');
}

function isNotFound(err: unknown): boolean {
  return String((err as { code?: unknown } | null)?.code) === '404';
}
