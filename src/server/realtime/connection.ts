/**
 * One `/v1/realtime` connection: a channel {@link Subscriber} over a `ws` WebSocket. It keeps as
 * little as possible per connection (an idle one is a socket, a `ws` object and this), and on the
 * fan-out path does one thing: write the publication's pre-built frame to the socket, or apply
 * the namespace's slow-client policy when the socket's queue is past its bounds.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, type RawData } from 'ws';
import {
  canOnChannel,
  ChannelError,
  type Channel,
  type ChannelHub,
  type ChannelIdentity,
  type PresenceEntry,
  type PresenceEvent,
  type Publication,
  type Subscriber,
  type SubscribeResult,
} from '../../channels/index.js';
import { closeCodeFor, type CloseReason } from '../errors.js';
import { clientFrameSchema, frameProblem, type ClientFrame, type FrameId } from './frames.js';
import { MAX_BAD_FRAMES, MAX_PENDING_REQUESTS, type ResolvedRealtimeOptions } from './options.js';
import { textFrame } from './ws-frame.js';

/** What a connection needs from its gateway, shared by all connections. */
export interface RealtimeContext {
  readonly hub: ChannelHub;
  readonly options: ResolvedRealtimeOptions;
  readonly logger: Logger;
  /** Counts a server-initiated close. */
  closed?(reason: CloseReason): void;
  /** Flushes the connection's batched frames once the current I/O phase is over (one shared setImmediate). */
  flushLater(connection: RealtimeConnection): void;
  /** Verifies a refreshed token (the authenticator, mapped to a channel identity). */
  refreshIdentity(token: string): Promise<ChannelIdentity & { readonly expiresAt?: number }>;
  readonly now: () => number;
}

/** Per-subscription flag: messages were dropped while the queue was full (skip policy). */
const SKIPPED = 1;

export class RealtimeConnection implements Subscriber {
  active = true;
  lastSeen: number;
  /** When the server started closing it (0 = open); the gateway cuts it after a grace period. */
  closingAt = 0;
  /** Channel → flags. Null until the first subscription. */
  private subs: Map<string, number> | null = null;
  private skipped = false;
  /** Writes made while the socket buffer was not empty, since it last drained. */
  private queued = 0;
  /**
   * Frames waiting for this tick's flush: every frame a connection gets in one event-loop turn
   * goes out in one writev, so a burst of publications costs one syscall per subscriber.
   */
  private batch: Buffer[] | null = null;
  private batchBytes = 0;
  private tokens: number;
  private refilledAt: number;
  private badFrames = 0;
  /** Requests being answered asynchronously (bounded by MAX_PENDING_REQUESTS). */
  private pending = 0;
  /** Reading stopped because the peer does not read its replies (resumed on drain). */
  private inputPaused = false;

  constructor(
    readonly ws: WebSocket,
    private readonly socket: Socket,
    readonly client: string,
    public identity: ChannelIdentity & { readonly expiresAt?: number },
    private readonly ctx: RealtimeContext,
  ) {
    this.lastSeen = ctx.now();
    this.tokens = ctx.options.publishBurst;
    this.refilledAt = this.lastSeen;
  }

  get presence(): PresenceEntry {
    return { client: this.client, user: this.identity.user, info: this.identity.info as string | undefined };
  }

  get subscriptions(): number {
    return this.subs?.size ?? 0;
  }

  /** Wires the socket; `onClose` runs once when it is gone. */
  start(onClose: () => void): void {
    const ws = this.ws;
    ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('pong', this.touch);
    ws.on('ping', this.touch);
    ws.once('close', () => {
      this.detach();
      onClose();
    });
    this.socket.on('drain', this.onDrain);
    const o = this.ctx.options;
    this.sendJson({
      type: 'welcome',
      client: this.client,
      user: this.identity.user,
      limits: {
        max_channels: o.maxChannelsPerConnection,
        max_frame_bytes: o.maxFrameBytes,
        max_message_bytes: this.ctx.hub.maxMessageBytes,
        publish_rate: o.publishRate,
        publish_burst: o.publishBurst,
        heartbeat_ms: o.heartbeatMs,
        idle_timeout_ms: o.idleTimeoutMs,
      },
    });
  }

  // ── fan-out path ───────────────────────────────────────────────────────────────────────────

  deliver(channel: Channel, pub: Publication): void {
    if (!this.active) return;
    if (this.overloaded()) return this.slow(channel);
    this.write((pub.ws ??= textFrame(pubJson(channel.quoted, pub))) as Buffer);
  }

  presenceEvent(_channel: Channel, event: PresenceEvent): void {
    if (!this.active || this.overloaded()) return; // presence events are advisory; the list is authoritative
    this.write((event.ws ??= textFrame(event.json)) as Buffer);
  }

  ended(channel: Channel, error: ChannelError): void {
    if (!this.active || this.subs?.delete(channel.name.name) !== true) return;
    this.sendJson({ type: 'unsub', channel: channel.name.name, code: error.code, message: error.message });
  }

  private overloaded(): boolean {
    const o = this.ctx.options;
    // This tick's frames count against the message bound only behind a backed-up socket: into an
    // empty one they go straight to the kernel at the flush, so a burst (a topic tailer catching
    // up, one big transaction) does not close a client that keeps up. Bytes always count.
    const waiting = this.socket.writableLength;
    return waiting + this.batchBytes > o.maxQueuedBytes || (waiting > 0 && this.queued + (this.batch?.length ?? 0) >= o.maxQueuedMessages);
  }

  /** Queues a frame for this tick's flush; frames keep their order. */
  private write(frame: Buffer): void {
    if (this.batch === null) {
      this.batch = [frame];
      this.ctx.flushLater(this);
    } else {
      this.batch.push(frame);
    }
    this.batchBytes += frame.length;
  }

  /** Called by the gateway's flusher. */
  flush(): void {
    const frames = this.batch;
    this.batch = null;
    this.batchBytes = 0;
    if (frames === null || this.closingAt !== 0 || this.ws.readyState !== WebSocket.OPEN) return;
    const socket = this.socket;
    // An empty write buffer means the socket drained. Node emits 'drain' only after a write that
    // returned false, so a buffer that emptied below the high-water mark never resets the count
    // there, and a fast reader would pile up stale counts until it was closed as slow (4004).
    if (socket.writableLength === 0) this.queued = 0;
    if (frames.length === 1) {
      socket.write(frames[0]!);
    } else {
      socket.cork();
      for (const frame of frames) socket.write(frame);
      socket.uncork();
    }
    if (socket.writableLength > 0) this.queued += frames.length;
  }

  private slow(channel: Channel): void {
    if (channel.namespace.slowClient === 'skip' && this.subs !== null) {
      const flags = this.subs.get(channel.name.name);
      if (flags !== undefined) {
        this.subs.set(channel.name.name, flags | SKIPPED);
        this.skipped = true;
        return;
      }
    }
    this.end('SLOW_CLIENT', 'slow client: the outbound queue overflowed; reconnect and recover from your offsets');
  }

  private readonly onDrain = (): void => {
    this.queued = 0;
    if (this.inputPaused) {
      this.inputPaused = false;
      this.ws.resume();
    }
    if (!this.skipped || this.subs === null || !this.active) return;
    this.skipped = false;
    for (const [name, flags] of this.subs) {
      if ((flags & SKIPPED) === 0) continue;
      this.subs.set(name, flags & ~SKIPPED);
      const position = this.ctx.hub.position(name);
      this.sendJson({ type: 'skipped', channel: name, offset: position?.offset ?? -1, epoch: position?.epoch ?? '', recovered: false });
    }
  };

  private readonly touch = (): void => {
    this.lastSeen = this.ctx.now();
  };

  // ── requests ───────────────────────────────────────────────────────────────────────────────

  private onMessage(data: RawData, isBinary: boolean): void {
    this.lastSeen = this.ctx.now();
    if (!this.active) return;
    // Every request is answered: a peer that sends requests without reading the answers would
    // pile them up here. Past the queue bound, stop reading it until its socket drains.
    if (!this.inputPaused && this.socket.writableLength + this.batchBytes > this.ctx.options.maxQueuedBytes) {
      this.inputPaused = true;
      this.ws.pause();
    }
    if (isBinary) return this.invalid(undefined, 'binary frames are not supported: send JSON text frames');
    let raw: unknown;
    try {
      raw = JSON.parse(text(data));
    } catch {
      return this.invalid(undefined, 'frame is not valid JSON');
    }
    if (isPlainPublish(raw)) {
      // The hot path of a publishing client, checked by hand: the same shape the schema accepts.
      this.badFrames = 0;
      try {
        this.handle(raw);
      } catch (err) {
        this.fail(raw.id, err);
      }
      return;
    }
    const parsed = clientFrameSchema.safeParse(raw);
    if (!parsed.success) {
      const id = typeof raw === 'object' && raw !== null && 'id' in raw ? (raw as { id: unknown }).id : undefined;
      return this.invalid(typeof id === 'string' || typeof id === 'number' ? id : undefined, frameProblem(parsed.error));
    }
    this.badFrames = 0;
    try {
      this.handle(parsed.data);
    } catch (err) {
      this.fail('id' in parsed.data ? parsed.data.id : undefined, err);
    }
  }

  private handle(frame: ClientFrame): void {
    const hub = this.ctx.hub;
    if (frame.type !== 'ping' && frame.type !== 'unsubscribe' && frame.type !== 'presence' && this.pending >= MAX_PENDING_REQUESTS) {
      throw new ChannelError('RATE_LIMITED', `at most ${MAX_PENDING_REQUESTS} requests may be unanswered at once`, 100);
    }
    switch (frame.type) {
      case 'subscribe': {
        const room = this.ctx.options.maxChannelsPerConnection - this.subscriptions;
        const fresh = frame.channels.filter((c) => !this.subs?.has(c.channel)).length;
        if (fresh > room) {
          throw new ChannelError('CHANNEL_LIMIT', `a connection may subscribe to at most ${this.ctx.options.maxChannelsPerConnection} channels`);
        }
        this.track(hub.subscribe(this.identity, this, frame.channels, (results) => this.subscribed(frame.id, results)), frame.id);
        return;
      }
      case 'unsubscribe':
        for (const name of frame.channels) {
          if (this.subs?.delete(name)) hub.unsubscribe(this, name);
        }
        return this.sendJson({ type: 'unsubscribed', id: frame.id });
      case 'publish': {
        this.takeToken();
        const data = JSON.stringify(frame.data ?? null);
        const result = hub.publish(this.identity, frame.channel, data, 'client');
        if (!(result instanceof Promise)) {
          return this.write(textFrame(`{"type":"published","id":${JSON.stringify(frame.id)},"offset":${result.offset},"epoch":${JSON.stringify(result.epoch)}}`));
        }
        this.track(result.then((r) => this.sendJson({ type: 'published', id: frame.id, ...r })), frame.id);
        return;
      }
      case 'presence': {
        const p = hub.presence(this.identity, frame.channel);
        return this.sendJson({ type: 'presence', id: frame.id, channel: frame.channel, count: p.count, clients: p.clients.map(presenceJson) });
      }
      case 'history':
        this.track(
          hub.history(this.identity, frame.channel, frame.since ?? -1, frame.limit ?? 100).then((h) =>
            this.sendJson({
              type: 'history',
              id: frame.id,
              channel: frame.channel,
              epoch: h.epoch,
              offset: h.offset,
              recovered: h.recovered,
              publications: h.publications.map((p) => ({ offset: p.offset, data: JSON.parse(p.data) as unknown })),
            }),
          ),
          frame.id,
        );
        return;
      case 'refresh':
        this.track(this.ctx.refreshIdentity(frame.token).then((identity) => this.refreshed(frame.id, identity)), frame.id);
        return;
      case 'ping':
        return this.sendJson(frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id });
    }
  }

  /** Written synchronously inside the hub's join, so missed publications precede live ones. */
  private subscribed(id: FrameId, results: SubscribeResult[]): void {
    const out: unknown[] = [];
    const missed: Buffer[] = [];
    for (const r of results) {
      if (r.error) {
        out.push({ channel: r.channel, error: { code: r.error.code, message: r.error.message } });
        continue;
      }
      (this.subs ??= new Map()).set(r.channel, 0);
      const ok = r.ok;
      out.push({
        channel: r.channel,
        offset: ok.offset,
        epoch: ok.epoch,
        ...(ok.recovered === undefined ? {} : { recovered: ok.recovered, missed: ok.missed.length }),
        ...(ok.presenceFull ? { presence: 'full' } : {}),
      });
      const quoted = JSON.stringify(r.channel);
      for (const pub of ok.missed) missed.push(textFrame(pubJson(quoted, pub)));
    }
    this.sendJson({ type: 'subscribed', id, results: out });
    for (const frame of missed) this.write(frame);
  }

  private refreshed(id: FrameId, identity: ChannelIdentity & { readonly expiresAt?: number }): void {
    if (!this.active) return;
    if (!this.identity.unrestricted && identity.user !== this.identity.user) {
      throw new ChannelError('FORBIDDEN', 'a refreshed token must be for the same user');
    }
    this.identity = identity;
    if (this.subs !== null) {
      for (const name of [...this.subs.keys()]) {
        let allowed = true;
        try {
          const { name: parsed } = this.ctx.hub.resolve(name);
          allowed = canOnChannel(identity, 'subscribe', parsed);
        } catch {
          allowed = false;
        }
        if (allowed) continue;
        this.subs.delete(name);
        this.ctx.hub.unsubscribe(this, name);
        this.sendJson({ type: 'unsub', channel: name, code: 'FORBIDDEN', message: 'the refreshed token no longer allows this channel' });
      }
    }
    this.sendJson({ type: 'refreshed', id });
  }

  /** Counts an asynchronous request until it settles; its failure becomes an `error` frame. */
  private track(work: Promise<unknown>, id: FrameId): void {
    this.pending++;
    work.then(
      () => this.pending--,
      (err: unknown) => {
        this.pending--;
        this.fail(id, err);
      },
    );
  }

  private takeToken(): void {
    const o = this.ctx.options;
    const now = this.ctx.now();
    this.tokens = Math.min(o.publishBurst, this.tokens + ((now - this.refilledAt) * o.publishRate) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) {
      throw new ChannelError('RATE_LIMITED', `publish rate limit (${o.publishRate}/s) reached`, Math.ceil(((1 - this.tokens) * 1000) / o.publishRate));
    }
    this.tokens -= 1;
  }

  private invalid(id: FrameId | undefined, message: string): void {
    this.sendJson({ type: 'error', ...(id === undefined ? {} : { id }), code: 'INVALID_FRAME', message });
    if (++this.badFrames > MAX_BAD_FRAMES) this.end('INVALID_FRAME', 'too many malformed frames');
  }

  private fail(id: FrameId | undefined, err: unknown): void {
    if (err instanceof ChannelError) {
      return this.sendJson({
        type: 'error',
        ...(id === undefined ? {} : { id }),
        code: err.code,
        message: err.message,
        ...(err.retryAfterMs === undefined ? {} : { retry_after_ms: err.retryAfterMs }),
      });
    }
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'INTERNAL';
    if (code === 'INTERNAL') this.ctx.logger.error({ err, client: this.client }, 'realtime request failed');
    this.sendJson({ type: 'error', ...(id === undefined ? {} : { id }), code, message: code === 'INTERNAL' ? 'internal error' : (err as Error).message });
  }

  private sendJson(frame: unknown): void {
    if (!this.active || this.ws.readyState !== WebSocket.OPEN) return;
    this.write(textFrame(JSON.stringify(frame)));
  }

  // ── closing ────────────────────────────────────────────────────────────────────────────────

  /** Closes with the code for `reason`; the gateway's sweep cuts a peer that does not finish. */
  end(reason: CloseReason, message: string): void {
    if (this.closingAt !== 0) return;
    this.closingAt = this.ctx.now();
    this.ctx.closed?.(reason);
    this.detach();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(closeCodeFor(reason), closeReasonText(message));
    else this.ws.terminate();
  }

  /** Leaves every channel; nothing is delivered after it. */
  private detach(): void {
    if (!this.active) return;
    this.active = false;
    if (this.subs !== null) for (const name of this.subs.keys()) this.ctx.hub.unsubscribe(this, name);
    this.subs = null;
  }
}

/** `data` comes before `offset`: for one channel the bytes in front of the payload are constant. */
function pubJson(quotedChannel: string, pub: Publication): string {
  return `{"type":"pub","channel":${quotedChannel},"data":${pub.data},"offset":${pub.offset}}`;
}

type PublishFrame = Extract<ClientFrame, { type: 'publish' }>;

/** `{"type":"publish","id":…,"channel":"…","data":…}` and nothing else (what the schema would accept). */
function isPlainPublish(raw: unknown): raw is PublishFrame {
  if (typeof raw !== 'object' || raw === null) return false;
  const f = raw as Record<string, unknown>;
  if (f['type'] !== 'publish') return false;
  const id = f['id'];
  const channel = f['channel'];
  let keys = 0;
  for (const key in f) {
    if (key !== 'type' && key !== 'id' && key !== 'channel' && key !== 'data') return false;
    keys++;
  }
  return (
    keys >= 3 &&
    'id' in f &&
    ((typeof id === 'string' && id.length <= 256) || (typeof id === 'number' && Number.isSafeInteger(id))) &&
    typeof channel === 'string' &&
    channel.length >= 1 &&
    channel.length <= 255
  );
}

function presenceJson(e: PresenceEntry): unknown {
  return e.info === undefined ? { client: e.client, user: e.user } : { client: e.client, user: e.user, info: JSON.parse(e.info) as unknown };
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

function closeReasonText(message: string): string {
  let out = message.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}
