/**
 * SSE streams of `GET /v1/channels/{channel}/events` (docs/channels.md, "SSE"): each stream is a
 * channel {@link Subscriber} writing `id: <offset>` / `data: <json>` events, pre-encoded once per
 * publication. One interval writes comment keepalives to every stream.
 */
import type { ServerResponse } from 'node:http';
import type { Channel, ChannelError, ChannelHub, PresenceEntry, PresenceEvent, Publication, Subscriber } from '../../channels/index.js';
import type { ResolvedRealtimeOptions } from './options.js';

export class SseStream implements Subscriber {
  active = true;
  private queued = 0;
  private skipped = false;

  constructor(
    private readonly res: ServerResponse,
    readonly channel: string,
    readonly presence: PresenceEntry,
    private readonly hub: ChannelHub,
    private readonly options: ResolvedRealtimeOptions,
  ) {
    res.on('drain', this.onDrain);
  }

  deliver(channel: Channel, pub: Publication): void {
    if (!this.active) return;
    if (this.overloaded()) {
      if (channel.namespace.slowClient === 'skip') {
        this.skipped = true;
        return;
      }
      // EventSource reconnects by itself with Last-Event-ID and recovers.
      this.stop();
      this.res.destroy();
      return;
    }
    this.write((pub.sse ??= `id: ${pub.offset}\ndata: ${pub.data}\n\n`));
  }

  presenceEvent(_channel: Channel, event: PresenceEvent): void {
    if (!this.active || this.overloaded()) return;
    this.write(`event: ${event.kind}\ndata: ${event.json}\n\n`);
  }

  ended(_channel: Channel, error: ChannelError): void {
    if (!this.active) return;
    this.active = false;
    this.event('error', { code: error.code, message: error.message });
    this.res.end();
  }

  /**
   * Writes an event of the stream's own (not a publication). With `id`, the browser's
   * Last-Event-ID moves there too, so a reconnect resumes after it even if no message came yet.
   */
  event(name: string, data: unknown, id?: number): void {
    this.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  keepalive(): void {
    if (this.active && !this.overloaded()) this.write(': keepalive\n\n');
  }

  write(chunk: string): void {
    this.res.write(chunk);
    if (this.res.writableLength > 0) this.queued++;
  }

  /** Leaves the channel; the response is the caller's to end. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    this.hub.unsubscribe(this, this.channel);
  }

  private overloaded(): boolean {
    return this.res.writableLength > this.options.maxQueuedBytes || this.queued >= this.options.maxQueuedMessages;
  }

  private readonly onDrain = (): void => {
    this.queued = 0;
    if (!this.skipped || !this.active) return;
    this.skipped = false;
    const position = this.hub.position(this.channel);
    const offset = position?.offset ?? -1;
    this.event('skipped', { channel: this.channel, offset, epoch: position?.epoch ?? '', recovered: false }, offset);
  };
}

/** Every open SSE stream, for keepalives and shutdown. */
export class SseStreams {
  private readonly streams = new Set<SseStream>();
  private readonly timer: NodeJS.Timeout;
  private sequence = 0;

  constructor(keepaliveMs: number) {
    this.timer = setInterval(() => {
      for (const s of this.streams) s.keepalive();
    }, keepaliveMs);
    this.timer.unref();
  }

  get size(): number {
    return this.streams.size;
  }

  /** A presence client id for a new stream. */
  nextClientId(): string {
    return `sse${(this.sequence++).toString(36)}`;
  }

  add(stream: SseStream): void {
    this.streams.add(stream);
  }

  delete(stream: SseStream): void {
    this.streams.delete(stream);
  }

  close(): void {
    clearInterval(this.timer);
  }
}
