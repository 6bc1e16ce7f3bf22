/**
 * `RealtimeClient`: channels over `/v1/realtime` (docs/channels.md), for browsers and Node.
 *
 * ```
 *  idle ──▶ connecting ──welcome──▶ connected ──socket closes──▶ disconnected ──backoff (full jitter)──▶ connecting
 *                                                                 │ fatal code (1009, 4000, 4009) / close()
 *                                                                 └──────────────▶ closed
 * ```
 *
 * Every subscription remembers the last `(epoch, offset)` it delivered; after a reconnect it is
 * re-subscribed with that position, so the handler sees the missed messages in order, without a
 * gap or a duplicate — or `onSubscribed({ recovered: false })` when the server's history no longer
 * has them (reload your state then). The token can be a function: it is called on every
 * (re)connect, and `refreshToken()` sends a fresh one to the open connection.
 */
import { fullJitter } from './backoff.js';
import { Emitter } from './emitter.js';
import {
  BrookServerError,
  ClientClosedError,
  ConnectionClosedError,
  ConnectionLostError,
  InvalidArgumentError,
  RequestTimeoutError,
  TooManyPendingRequestsError,
} from './errors.js';
import { globalWebSocket, OPEN, type WebSocketConstructor, type WebSocketLike } from './websocket.js';

export const REALTIME_SUBPROTOCOL = 'brook.realtime.v1';

export type RealtimeState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** A position in a channel: the last offset you have, in an epoch. */
export interface ChannelPosition {
  readonly offset: number;
  readonly epoch: string;
}

export interface ChannelMessage<T = unknown> {
  readonly channel: string;
  readonly offset: number;
  readonly data: T;
}

export interface SubscribedInfo {
  readonly channel: string;
  /** The channel's last offset when (re)subscribed. */
  readonly offset: number;
  readonly epoch: string;
  /** Absent for a first live-only subscription; false = messages were lost, reload your state. */
  readonly recovered?: boolean;
  readonly missed?: number;
  /** True when this follows a reconnect. */
  readonly resubscribed: boolean;
}

export interface PresenceInfo {
  readonly client: string;
  readonly user: string;
  readonly info?: unknown;
}

export interface SubscribeOptions {
  /** Start after this position (e.g. one saved across page loads): missed messages are delivered first. */
  readonly since?: ChannelPosition;
  /**
   * Only messages whose data matches every condition, evaluated by the server before fan-out
   * (docs/channels.md, "Row filters"), e.g. `[['after.status', 'eq', 'paid'], ['after.total', 'gte', 100]]`.
   */
  readonly filter?: readonly (readonly [string, string, unknown?])[];
  /** Every (re)subscription's outcome; check `recovered === false`. */
  readonly onSubscribed?: (info: SubscribedInfo) => void;
  readonly onJoin?: (who: PresenceInfo) => void;
  readonly onLeave?: (who: PresenceInfo) => void;
  /** The server refused or ended the subscription (FORBIDDEN, UNKNOWN_CHANNEL, ...); it is not retried. */
  readonly onError?: (err: BrookServerError) => void;
}

export interface RealtimeClientOptions {
  /**
   * `http(s)://host:port` or `ws(s)://host:port[/v1/realtime]`; with several (nodes of one
   * cluster, docs/channels.md "Several nodes") each reconnect tries the next one.
   */
  readonly url: string | readonly string[];
  /** A token, or a function giving a fresh one (called on every connect and by `refreshToken`). */
  readonly token?: string | (() => string | Promise<string>);
  /** @defaultValue globalThis.WebSocket */
  readonly WebSocket?: WebSocketConstructor;
  /** Reconnect backoff (full jitter). @defaultValue { baseMs: 250, capMs: 10_000 } */
  readonly reconnect?: { readonly baseMs?: number; readonly capMs?: number } | false;
  /**
   * With a `token` function: refresh this long before the token's `exp` (read from the JWT
   * payload, not verified), so the server never closes the connection with 4010. @defaultValue 30_000
   */
  readonly refreshBeforeExpiryMs?: number;
  /** @defaultValue 10_000 */
  readonly requestTimeoutMs?: number;
  /** @defaultValue 1_000 */
  readonly maxPendingRequests?: number;
}

export interface RealtimeEvents {
  state: RealtimeState;
  connected: { readonly client: string; readonly reconnect: boolean };
  disconnected: { readonly code: number; readonly reason: string };
  reconnecting: { readonly attempt: number; readonly delayMs: number };
  error: Error;
}

/** Close codes after which reconnecting cannot help (docs/channels.md, "Close codes"). */
const FATAL = new Set([1009, 4000, 4009]);
const UNAUTHORIZED = 1008;
const TOKEN_EXPIRED = 4010;

type Frame = Record<string, unknown> & { readonly type: string };

interface Pending {
  /** Runs synchronously on the reply, before frames that follow it are handled. */
  readonly sync?: ((frame: Frame) => void) | undefined;
  readonly resolve: (frame: Frame) => void;
  readonly reject: (err: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** One channel subscription; survives reconnects until `unsubscribe()`. */
export class Subscription<T = unknown> {
  /** The last position delivered to the handler (null before the first message or subscribe). */
  position: ChannelPosition | null;
  active = true;

  constructor(
    private readonly client: RealtimeClient,
    readonly channel: string,
    readonly handler: (message: ChannelMessage<T>) => void,
    readonly options: SubscribeOptions,
  ) {
    this.position = options.since ?? null;
  }

  /** Stops delivery and tells the server. */
  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.client.dropSubscription(this as Subscription<unknown>);
  }
}

export class RealtimeClient {
  readonly events = new Emitter<RealtimeEvents>();
  private stateValue: RealtimeState = 'idle';
  private socket: WebSocketLike | null = null;
  private readonly urls: readonly string[];
  /** Index in `urls` of the node the next attempt goes to. */
  private urlIndex = 0;
  private attempt = 0;
  private everConnected = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly subs = new Map<string, Subscription<unknown>>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private clientId: string | null = null;
  private readonly WebSocketClass: WebSocketConstructor;
  private readonly backoff: { readonly baseMs: number; readonly capMs: number } | null;
  private readonly requestTimeoutMs: number;
  private readonly maxPending: number;
  private readonly waiters: (() => void)[] = [];
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: RealtimeClientOptions) {
    const WebSocketClass = options.WebSocket ?? globalWebSocket();
    if (WebSocketClass === undefined) throw new InvalidArgumentError('this runtime has no global WebSocket: pass one (e.g. the `ws` package)');
    this.WebSocketClass = WebSocketClass;
    this.urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new InvalidArgumentError('url must name at least one server');
    for (const url of this.urls) realtimeUrl(url, undefined); // reject a bad URL now rather than on the first attempt
    const r = options.reconnect;
    this.backoff = r === false ? null : { baseMs: r?.baseMs ?? 250, capMs: r?.capMs ?? 10_000 };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.maxPending = options.maxPendingRequests ?? 1_000;
  }

  get state(): RealtimeState {
    return this.stateValue;
  }

  /** The server-assigned client id of the current connection (presence), once connected. */
  get client(): string | null {
    return this.clientId;
  }

  on<K extends keyof RealtimeEvents>(name: K, listener: (event: RealtimeEvents[K]) => void): () => void {
    return this.events.on(name, listener);
  }

  /** Connects if idle; resolves once connected. */
  connect(): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(new ClientClosedError('realtime client'));
    if (this.stateValue === 'connected') return Promise.resolve();
    if (this.stateValue === 'idle') void this.open();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Subscribes `handler` to `channel`. Messages arrive in offset order, exactly once, across
   * reconnects (see the class comment).
   *
   * @example
   * const rt = new RealtimeClient({ url: 'https://brook.example', token: () => fetchToken() });
   * const sub = rt.subscribe('chat:lobby', (m) => render(m.data), {
   *   since: saved,                                   // optional: resume after a page reload
   *   onSubscribed: (s) => { if (s.recovered === false) reloadHistory(); },
   * });
   */
  subscribe<T = unknown>(channel: string, handler: (message: ChannelMessage<T>) => void, options: SubscribeOptions = {}): Subscription<T> {
    if (this.stateValue === 'closed') throw new ClientClosedError('realtime client');
    if (this.subs.has(channel)) throw new InvalidArgumentError(`already subscribed to ${JSON.stringify(channel)}`);
    const sub = new Subscription<T>(this, channel, handler, options);
    this.subs.set(channel, sub as Subscription<unknown>);
    if (this.stateValue === 'connected') this.sendSubscribe([sub as Subscription<unknown>], false);
    else void this.connect();
    return sub;
  }

  /** Publishes `data` (any JSON) to a channel; resolves with its offset and epoch. */
  async publish(channel: string, data: unknown): Promise<ChannelPosition> {
    const reply = await this.request({ type: 'publish', channel, data });
    return { offset: reply['offset'] as number, epoch: reply['epoch'] as string };
  }

  async presence(channel: string): Promise<{ readonly count: number; readonly clients: readonly PresenceInfo[] }> {
    const reply = await this.request({ type: 'presence', channel });
    return { count: reply['count'] as number, clients: reply['clients'] as PresenceInfo[] };
  }

  async history(channel: string, options: { readonly since?: number; readonly limit?: number } = {}): Promise<{ readonly epoch: string; readonly offset: number; readonly recovered: boolean; readonly publications: readonly { offset: number; data: unknown }[] }> {
    const reply = await this.request({ type: 'history', channel, ...options });
    return reply as unknown as { epoch: string; offset: number; recovered: boolean; publications: { offset: number; data: unknown }[] };
  }

  /** Gets a fresh token from the `token` function and hands it to the open connection. */
  async refreshToken(): Promise<void> {
    const token = await this.token();
    if (token === undefined) throw new InvalidArgumentError('no token configured');
    await this.request({ type: 'refresh', token });
    this.scheduleRefresh(token);
  }

  /** With a token function, refreshes ahead of the token's `exp` (a failure is reported, and 4010 reconnects anyway). */
  private scheduleRefresh(token: string | undefined): void {
    clearTimeout(this.refreshTimer);
    if (typeof this.options.token !== 'function' || token === undefined) return;
    const exp = jwtExpiry(token);
    if (exp === null) return;
    const delay = Math.max(1_000, exp - Date.now() - (this.options.refreshBeforeExpiryMs ?? 30_000));
    this.refreshTimer = setTimeout(() => {
      if (this.stateValue !== 'connected') return; // the next connect fetches a fresh token anyway
      this.refreshToken().catch((err: unknown) => this.events.emit('error', err as Error));
    }, delay);
  }

  /** Closes for good: subscriptions end, pending requests fail. */
  close(): void {
    if (this.stateValue === 'closed') return;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    this.setState('closed');
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, 'client closed');
    this.failPending(new ClientClosedError('realtime client'));
    for (const sub of this.subs.values()) sub.active = false;
    this.subs.clear();
  }

  /** @internal */
  dropSubscription(sub: Subscription<unknown>): void {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (this.stateValue === 'connected') this.request({ type: 'unsubscribe', channels: [sub.channel] }).catch((err: unknown) => this.events.emit('error', err as Error));
  }

  // ── connection ─────────────────────────────────────────────────────────────────────────────

  private async token(): Promise<string | undefined> {
    const t = this.options.token;
    return typeof t === 'function' ? await t() : t;
  }

  private setState(state: RealtimeState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    this.events.emit('state', state);
  }

  private async open(): Promise<void> {
    this.setState('connecting');
    let token: string | undefined;
    try {
      token = await this.token();
    } catch (err) {
      this.events.emit('error', err as Error);
      return this.scheduleReconnect();
    }
    if (this.stateValue === 'closed') return;
    this.scheduleRefresh(token);
    const socket = new this.WebSocketClass(realtimeUrl(this.urls[this.urlIndex]!, token), REALTIME_SUBPROTOCOL);
    this.socket = socket;
    socket.addEventListener('message', (event) => {
      if (this.socket !== socket) return;
      let frame: Frame;
      try {
        frame = JSON.parse(String(event.data)) as Frame;
      } catch (err) {
        this.events.emit('error', err as Error);
        return;
      }
      this.onFrame(frame);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onClose(event.code, event.reason);
    });
    socket.addEventListener('error', () => {
      // Followed by `close`, which decides what happens.
    });
  }

  private onClose(code: number, reason: string): void {
    this.clientId = null;
    this.failPending(new ConnectionLostError(`connection closed (${code})`));
    this.events.emit('disconnected', { code, reason });
    if (this.stateValue === 'closed') return;
    const tokenIsFunction = typeof this.options.token === 'function';
    if (FATAL.has(code) || (code === UNAUTHORIZED && !tokenIsFunction) || this.backoff === null) {
      this.events.emit('error', new ConnectionClosedError(code, reason));
      this.close();
      return;
    }
    this.setState('disconnected');
    if (code === TOKEN_EXPIRED) this.attempt = 0; // a fresh token is all it needs
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stateValue === 'closed' || this.backoff === null) return;
    // The node went away or refused us: the next attempt tries the next one.
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    const delayMs = fullJitter(this.attempt++, this.backoff);
    this.events.emit('reconnecting', { attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimeout(() => void this.open(), delayMs);
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'welcome': {
        const reconnect = this.everConnected;
        this.everConnected = true;
        this.attempt = 0;
        this.clientId = frame['client'] as string;
        this.setState('connected');
        this.events.emit('connected', { client: this.clientId, reconnect });
        if (this.subs.size > 0) this.sendSubscribe([...this.subs.values()], reconnect);
        for (const w of this.waiters.splice(0)) w();
        return;
      }
      case 'pub': {
        const sub = this.subs.get(frame['channel'] as string);
        if (sub === undefined || !sub.active) return;
        const offset = frame['offset'] as number;
        // Defensive: a message at or before what was delivered is never handed out twice.
        if (sub.position !== null && offset <= sub.position.offset) return;
        sub.position = { offset, epoch: sub.position?.epoch ?? '' };
        sub.handler({ channel: sub.channel, offset, data: frame['data'] });
        return;
      }
      case 'join':
      case 'leave': {
        const sub = this.subs.get(frame['channel'] as string);
        const who = { client: frame['client'] as string, user: frame['user'] as string, ...(frame['info'] === undefined ? {} : { info: frame['info'] }) };
        if (frame.type === 'join') sub?.options.onJoin?.(who);
        else sub?.options.onLeave?.(who);
        return;
      }
      case 'skipped': {
        const sub = this.subs.get(frame['channel'] as string);
        if (sub === undefined) return;
        sub.position = { offset: frame['offset'] as number, epoch: frame['epoch'] as string };
        sub.options.onSubscribed?.({ channel: sub.channel, offset: sub.position.offset, epoch: sub.position.epoch, recovered: false, resubscribed: false });
        return;
      }
      case 'unsub': {
        const sub = this.subs.get(frame['channel'] as string);
        if (sub === undefined) return;
        this.subs.delete(sub.channel);
        sub.active = false;
        sub.options.onError?.(new BrookServerError(frame['code'] as string, frame['message'] as string));
        return;
      }
      default: {
        const id = frame['id'];
        if (typeof id !== 'number') {
          if (frame.type === 'error') this.events.emit('error', new BrookServerError(frame['code'] as string, frame['message'] as string));
          return;
        }
        const p = this.pending.get(id);
        if (p === undefined) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        if (frame.type === 'error') {
          p.reject(new BrookServerError(frame['code'] as string, frame['message'] as string));
          return;
        }
        try {
          p.sync?.(frame);
        } catch (err) {
          this.events.emit('error', err as Error);
        }
        p.resolve(frame);
      }
    }
  }

  /**
   * (Re)subscribes with each subscription's last position. The reply is handled before the
   * missed `pub` frames that follow it, so positions are set from the reply first.
   */
  private sendSubscribe(subs: Subscription<unknown>[], resubscribed: boolean): void {
    for (let i = 0; i < subs.length; i += 100) {
      const chunk = subs.slice(i, i + 100);
      const channels = chunk.map((s) => ({
        channel: s.channel,
        ...(s.position === null ? {} : { since: s.position }),
        ...(s.options.filter === undefined ? {} : { filter: s.options.filter }),
      }));
      const onReply = (reply: Frame): void => {
          for (const r of reply['results'] as Frame[]) {
            const sub = this.subs.get(r['channel'] as string);
            if (sub === undefined) continue;
            const error = r['error'] as { code: string; message: string } | undefined;
            if (error !== undefined) {
              this.subs.delete(sub.channel);
              sub.active = false;
              sub.options.onError?.(new BrookServerError(error.code, error.message));
              continue;
            }
            const offset = r['offset'] as number;
            const epoch = r['epoch'] as string;
            const recovered = r['recovered'] as boolean | undefined;
            const missed = r['missed'] as number | undefined;
            // Recovered: missed pubs follow and advance the position. Otherwise start from the top.
            sub.position = recovered === true && sub.position !== null ? { offset: sub.position.offset, epoch } : { offset, epoch };
            sub.options.onSubscribed?.({
              channel: sub.channel,
              offset,
              epoch,
              ...(recovered === undefined ? {} : { recovered }),
              ...(missed === undefined ? {} : { missed }),
              resubscribed,
            });
          }
      };
      this.request({ type: 'subscribe', channels }, onReply).catch((err: unknown) => this.events.emit('error', err as Error));
    }
  }

  private request(frame: Record<string, unknown>, sync?: (reply: Frame) => void): Promise<Frame> {
    if (this.stateValue === 'closed') return Promise.reject(new ClientClosedError('realtime client'));
    if (this.pending.size >= this.maxPending) return Promise.reject(new TooManyPendingRequestsError(this.maxPending));
    const send = (): Promise<Frame> => {
      const socket = this.socket;
      if (socket === null || socket.readyState !== OPEN || this.stateValue !== 'connected') {
        return Promise.reject(new ConnectionLostError('not connected'));
      }
      const id = this.nextId++;
      return new Promise<Frame>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new RequestTimeoutError(frame['type'] as string, this.requestTimeoutMs));
        }, this.requestTimeoutMs);
        this.pending.set(id, { sync, resolve, reject, timer });
        socket.send(JSON.stringify({ ...frame, id }));
      });
    };
    return this.stateValue === 'connected' ? send() : this.connect().then(send);
  }

  private failPending(err: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

/** A JWT's `exp` in ms, read without verifying (only to time a refresh); null when absent or unreadable. */
function jwtExpiry(token: string): number | null {
  const payload = token.split('.')[1];
  if (payload === undefined) return null;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : null;
  } catch {
    return null; // not a JWT we can read: no proactive refresh, 4010 still reconnects with a fresh token
  }
}

/** The `/v1/realtime` URL for a base URL, with the token in the query (browsers cannot set headers). */
export function realtimeUrl(base: string, token: string | undefined): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch (err) {
    throw new InvalidArgumentError(`invalid url ${JSON.stringify(base)}`, { cause: err });
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new InvalidArgumentError(`url must be http(s) or ws(s), got ${JSON.stringify(url.protocol)}`);
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/v1/realtime';
  if (token !== undefined) url.searchParams.set('token', token);
  return url.toString();
}
