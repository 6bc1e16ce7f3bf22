/**
 * One logical connection to Brook's `/v1/ws`, kept alive across socket drops.
 *
 * ```
 *  idle ──connect()──▶ connecting ──welcome──▶ open ──socket closes──▶ backoff ──timer──▶ connecting
 *                          │                                             │
 *                          └──── fatal close code / close() ─────────────┴──────▶ closed
 * ```
 *
 * Requests get an integer id and a timeout; the reply (or `error` frame) with that id settles
 * them. When the socket drops, every outstanding request fails with ConnectionLostError (the
 * server may or may not have acted on it) and the connection reconnects with exponential backoff
 * and full jitter. Owners of server-side state (subscriptions, group memberships) re-create it
 * from their `onOpen` hook; requests made while disconnected wait for the next `welcome`.
 */
import { fullJitter } from './backoff.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_PROTOCOL,
  DEFAULT_RECONNECT_BASE_MS,
  DEFAULT_RECONNECT_CAP_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './defaults.js';
import { Emitter } from './emitter.js';
import {
  BrookServerError,
  ClientClosedError,
  ConnectionClosedError,
  ConnectionLostError,
  InvalidArgumentError,
  ProtocolError,
  RequestTimeoutError,
  TooManyPendingRequestsError,
  BrookClientError,
} from './errors.js';
import { Fifo } from '../lib/fifo.js';
import { Gate } from './gate.js';
import type { ClientOptions } from './options.js';
import { decodePushFrame } from './binary.js';
import { BINARY_SUBPROTOCOL, OPEN, SUBPROTOCOL, UNMASKED_FRAMES, globalWebSocket, type WebSocketConstructor, type WebSocketLike } from './websocket.js';
import {
  encodeRequest,
  parseServerFrame,
  type AssignmentFrame,
  type ClientRequest,
  type CreditFrame,
  type JobsFrame,
  type RecordsFrame,
  type Reply,
  type ServerLimits,
} from './wire.js';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

/** Events of {@link BrookClient.on}. */
export interface ClientEvents {
  /** A `welcome` arrived; `reconnect` is false the first time. */
  connected: { readonly session: string; readonly limits: ServerLimits; readonly reconnect: boolean };
  /** The socket closed (or never opened); the client reconnects unless the code is fatal. */
  disconnected: { readonly code: number; readonly reason: string };
  /** The next attempt starts after `delayMs`. */
  reconnecting: { readonly attempt: number; readonly delayMs: number };
  /**
   * An error no caller is waiting for: an `error` frame without an id, a malformed frame, a
   * failed background commit or heartbeat, a rebalance hook that threw, or the fatal error
   * that closed the client.
   */
  error: Error;
}

/** Close codes after which reconnecting cannot help (docs/protocol.md, "Close codes"). */
const FRAME_TOO_LARGE = 1009;
const MALFORMED_FRAMES = 4000;
const POLICY = 1008;
/** Our own code for a socket we gave up on before the server closed it. */
const ABANDONED = 4999;

interface Pending {
  readonly type: string;
  /** The reply type that resolves it; any other reply rejects it with a ProtocolError. */
  readonly expect: Reply['type'];
  readonly resolve: (reply: never) => void;
  readonly reject: (err: Error) => void;
  /** performance.now() after which the request fails with REQUEST_TIMEOUT (see `sweepTimeouts`). */
  readonly deadline: number;
  /** Left when the request settles, however it settles. */
  readonly gate: Gate;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

export interface PushHandlers {
  /** Records for a subscription id this handler registered. */
  records(frame: RecordsFrame): void;
  /** The server stopped the subscription after a failed read (`error` with `sub`). */
  failed(err: BrookServerError, sub: string): void;
}

export interface GroupHandlers extends PushHandlers {
  /** An assignment pushed without a request. */
  assignment(frame: AssignmentFrame): void;
  /** The membership ended on the server (`error` with `group`, e.g. the session expired). */
  ended(err: BrookServerError): void;
}

export interface JobHandlers {
  /** Deliveries pushed to a work subscription this handler registered. */
  jobs(frame: JobsFrame): void;
  /** The server stopped the work subscription (`error` with `sub`, e.g. the queue was deleted). */
  failed(err: BrookServerError, sub: string): void;
}

export class Connection {
  readonly events = new Emitter<ClientEvents>();
  private stateValue: ConnectionState = 'idle';
  private socket: WebSocketLike | null = null;
  private sessionId: string | null = null;
  private limitsValue: ServerLimits | null = null;
  private everOpened = false;
  private attempt = 0;
  /** Index in `urls` of the node the next attempt goes to. */
  private urlIndex = 0;
  private readonly urls: readonly string[];
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private welcomeTimer: ReturnType<typeof setTimeout> | undefined;
  private failure: Error | null = null;

  private nextId = 1;
  /** In sending order, so deadlines ascend (one timeout for all): see `sweepTimeouts`. */
  private readonly pending = new Map<number | string, Pending>();
  private timeoutSweep: ReturnType<typeof setTimeout> | undefined;
  /** Callers waiting for `open`; bounded by the callers themselves (each holds its promise). */
  private readonly readyWaiters = new Fifo<Waiter>();

  /**
   * Produce frames pass one FIFO gate (so batches reach the server in the order they were made)
   * bounded by `max_inflight_produce` and closed during a `slow_down` pause; other requests pass
   * another, bounded by `max_inflight_requests`. Beyond those the server would answer RATE_LIMITED.
   */
  private readonly produceGate: Gate;
  private readonly requestGate: Gate;
  private pausedUntil = 0;
  private pauseTimer: ReturnType<typeof setTimeout> | undefined;

  private readonly routes = new Map<string, PushHandlers>();
  private readonly groups = new Map<string, GroupHandlers>();
  private readonly jobRoutes = new Map<string, JobHandlers>();
  private readonly openHooks = new Set<(reconnect: boolean) => void>();
  private readonly closeHooks = new Set<(err: Error) => void>();

  private readonly WebSocketClass: WebSocketConstructor;
  /** Speaks brook.v1.bin: produce frames and record pushes are binary. */
  readonly binary: boolean;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly maxPending: number;
  private readonly reconnect: { readonly baseMs: number; readonly capMs: number; readonly maxAttempts: number } | null;

  constructor(private readonly options: ClientOptions) {
    const WebSocketClass = options.WebSocket ?? globalWebSocket();
    if (WebSocketClass === undefined) {
      throw new InvalidArgumentError(
        "this runtime has no global WebSocket (Node < 22): pass one, e.g. new BrookClient({ url, WebSocket: (await import('ws')).default })",
      );
    }
    this.WebSocketClass = WebSocketClass;
    const protocol = options.protocol ?? DEFAULT_PROTOCOL;
    if (protocol !== 'binary' && protocol !== 'json') throw new InvalidArgumentError(`protocol must be 'binary' or 'json', got ${String(protocol)}`);
    this.binary = protocol === 'binary';
    this.requestTimeoutMs = positive(options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs');
    this.connectTimeoutMs = positive(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');
    this.maxPending = positive(options.maxPendingRequests, DEFAULT_MAX_PENDING_REQUESTS, 'maxPendingRequests');
    const r = options.reconnect;
    this.reconnect =
      r === false
        ? null
        : {
            baseMs: positive(r?.baseMs, DEFAULT_RECONNECT_BASE_MS, 'reconnect.baseMs'),
            capMs: positive(r?.capMs, DEFAULT_RECONNECT_CAP_MS, 'reconnect.capMs'),
            maxAttempts: r?.maxAttempts ?? Number.POSITIVE_INFINITY,
          };
    this.urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (this.urls.length === 0) throw new InvalidArgumentError('url must name at least one server');
    for (const url of this.urls) wsUrl(url, undefined); // reject a bad URL now rather than on the first attempt
    this.produceGate = new Gate(
      () => this.limitsValue?.maxInflightProduce ?? 1,
      () => this.stateValue === 'open' && !this.paused(),
    );
    this.requestGate = new Gate(
      () => Math.min(this.limitsValue?.maxInflightRequests ?? 1, this.maxPending),
      () => this.stateValue === 'open',
    );
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** The server's bounds, known after the first `welcome`. */
  get limits(): ServerLimits | null {
    return this.limitsValue;
  }

  get session(): string | null {
    return this.sessionId;
  }

  get isOpen(): boolean {
    return this.stateValue === 'open';
  }

  /** Starts connecting if idle; resolves at the next `welcome`. */
  ready(): Promise<void> {
    if (this.stateValue === 'open') return Promise.resolve();
    if (this.stateValue === 'closed') return Promise.reject(this.failure ?? new ClientClosedError());
    if (this.stateValue === 'idle') this.startAttempt();
    return new Promise<void>((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Sends a request and resolves with its reply, once the connection is open and fewer than the
   * server's `max_inflight_requests` requests are unanswered (waiting meanwhile, in order).
   */
  request<T extends Reply['type']>(request: ClientRequest, expect: T): Promise<Extract<Reply, { type: T }>> {
    return this.through(this.requestGate, (id) => encodeRequest(id, request), request.type, expect);
  }

  /**
   * Sends a produce frame built by `build(id)`, in FIFO order with other produce frames, once the
   * connection is open, no `slow_down` pause is running and fewer than the server's
   * `max_inflight_produce` produce frames are unanswered.
   */
  produce(build: (id: number) => string | Uint8Array): Promise<Extract<Reply, { type: 'produced' }>> {
    return this.through(this.produceGate, build, 'produce', 'produced');
  }

  /**
   * Sends through `gate` and resolves with the reply. With room in the gate the frame goes out
   * synchronously (no promise per hop: a producer sending one record per frame pays for each).
   */
  private through<T extends Reply['type']>(
    gate: Gate,
    build: (id: number) => string | Uint8Array,
    type: string,
    expect: T,
  ): Promise<Extract<Reply, { type: T }>> {
    if (this.stateValue === 'closed') return Promise.reject(this.failure ?? new ClientClosedError());
    if (this.stateValue === 'idle') this.startAttempt();
    if (gate.tryEnter()) return this.send(gate, build, type, expect);
    return gate.enter().then(() => this.send(gate, build, type, expect));
  }

  /** A frame without a reply (credit). Dropped when the socket is down: state is rebuilt on reconnect. */
  sendFrame(frame: CreditFrame): boolean {
    if (this.stateValue !== 'open' || this.socket === null) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  /** Routes `records` pushes of one subscription id; returns the unregister function. */
  route(sub: string, handlers: PushHandlers): () => void {
    this.routes.set(sub, handlers);
    return () => {
      if (this.routes.get(sub) === handlers) this.routes.delete(sub);
    };
  }

  /** Routes `jobs` pushes of one work subscription; returns the unregister function. */
  routeJobs(sub: string, handlers: JobHandlers): () => void {
    this.jobRoutes.set(sub, handlers);
    return () => {
      if (this.jobRoutes.get(sub) === handlers) this.jobRoutes.delete(sub);
    };
  }

  /** Routes a group's pushes: records of `group:<group>:<topic>:<partition>`, assignments, its end. */
  routeGroup(group: string, handlers: GroupHandlers): () => void {
    const prefix = groupSubPrefix(group);
    this.routes.set(prefix, handlers);
    this.groups.set(group, handlers);
    return () => {
      if (this.routes.get(prefix) === handlers) this.routes.delete(prefix);
      if (this.groups.get(group) === handlers) this.groups.delete(group);
    };
  }

  hasGroup(group: string): boolean {
    return this.groups.has(group);
  }

  /**
   * Reports an error no caller is waiting for: to the `error` listeners, or, when there are none,
   * to the console, so that it is never lost.
   */
  report(err: Error): void {
    if (!this.events.emit('error', err)) console.warn('brook client:', err);
  }

  /** Called after every `welcome`, before requests waiting for the connection are released. */
  onOpen(hook: (reconnect: boolean) => void): () => void {
    this.openHooks.add(hook);
    return () => this.openHooks.delete(hook);
  }

  /** Called once when the connection closes for good (close() or a fatal error). */
  onClose(hook: (err: Error) => void): () => void {
    this.closeHooks.add(hook);
    return () => this.closeHooks.delete(hook);
  }

  /** Closes for good: outstanding requests and waiters fail with ClientClosedError. */
  close(): void {
    this.shutdown(new ClientClosedError(), 1000, 'client closed');
  }

  // ── socket lifecycle ──────────────────────────────────────────────────────────────────────

  private startAttempt(): void {
    this.stateValue = 'connecting';
    this.openSocket().catch((err: unknown) => {
      // Getting the token failed or the constructor threw: count it as a failed attempt.
      this.report(asClientError(err));
      this.afterSocketClosed(ABANDONED, err instanceof Error ? err.message : String(err));
    });
  }

  private async openSocket(): Promise<void> {
    const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    if (this.stateValue !== 'connecting') return; // closed while the token was being fetched
    const url = wsUrl(this.urls[this.urlIndex % this.urls.length]!, token);
    const protocol = this.binary ? BINARY_SUBPROTOCOL : SUBPROTOCOL;
    const socket =
      this.options.maskFrames === false ? new this.WebSocketClass(url, protocol, UNMASKED_FRAMES) : new this.WebSocketClass(url, protocol);
    // ArrayBuffer in browsers and with `ws` alike (ws would hand over Node Buffers otherwise).
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    this.welcomeTimer = setTimeout(() => {
      this.abandon(socket, `no welcome within ${this.connectTimeoutMs} ms`);
    }, this.connectTimeoutMs);
    socket.addEventListener('message', (event) => {
      if (this.socket !== socket) return;
      this.onMessage(event.data);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.afterSocketClosed(event.code, event.reason);
    });
    // 'error' is always followed by 'close', which does the work; the listener keeps ws from
    // treating the error as unhandled.
    socket.addEventListener('error', () => undefined);
  }

  /** Drops a socket we no longer trust; its late events are ignored. */
  private abandon(socket: WebSocketLike, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = null;
    closeQuietly(socket, 1000, reason);
    this.afterSocketClosed(ABANDONED, reason);
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      this.onBinary(data);
      return;
    }
    let frame;
    try {
      frame = parseServerFrame(data);
    } catch (err) {
      this.report(asClientError(err));
      return;
    }
    switch (frame.type) {
      case 'welcome':
        this.onWelcome(frame.session, frame.limits);
        return;
      case 'reply': {
        const p = this.pending.get(frame.id);
        // Unknown id: the request timed out already; its caller has moved on.
        if (p === undefined) return;
        this.resolvePending(frame.id, p, frame.reply);
        return;
      }
      case 'error': {
        const err = new BrookServerError(frame.code, frame.message);
        const p = frame.id === undefined ? undefined : this.pending.get(frame.id);
        if (p !== undefined && frame.id !== undefined) {
          this.settle(frame.id, p);
          p.reject(err);
          return;
        }
        if (frame.sub !== undefined) {
          const worker = this.jobRoutes.get(frame.sub);
          if (worker !== undefined) {
            worker.failed(err, frame.sub);
            return;
          }
          const handlers = this.routeOf(frame.sub);
          // SUBSCRIPTION_NOT_FOUND for credit sent just before an unsubscribe: nothing to do.
          if (handlers !== undefined) handlers.failed(err, frame.sub);
          else if (frame.code !== 'SUBSCRIPTION_NOT_FOUND') this.report(err);
          return;
        }
        const group = frame.group === undefined ? undefined : this.groups.get(frame.group);
        if (group !== undefined) group.ended(err);
        else this.report(err);
        return;
      }
      case 'records':
        // No handler: records of a subscription just closed or revoked, already in flight.
        this.routeOf(frame.sub)?.records(frame);
        return;
      case 'assignment': {
        // docs/protocol.md's assignment push names no group; it can be attributed when there is one.
        const group = frame.group !== undefined ? this.groups.get(frame.group) : this.groups.size === 1 ? [...this.groups.values()][0] : undefined;
        if (group !== undefined) group.assignment(frame);
        else this.report(new ProtocolError('an assignment push for no group this client is in'));
        return;
      }
      case 'jobs': {
        const worker = this.jobRoutes.get(frame.sub);
        // No handler: jobs pushed just before the worker stopped; their leases expire or were released.
        if (worker !== undefined) worker.jobs(frame);
        else this.report(new ProtocolError(`jobs pushed for ${JSON.stringify(frame.sub)}, which no worker of this client runs`));
        return;
      }
      case 'slow_down':
        this.pause(frame.retryAfterMs);
        return;
      case 'unknown':
        // A frame type from a newer server: ignoring it is the forward-compatible choice.
        return;
      default: {
        const never: never = frame;
        throw new ProtocolError(`unhandled frame ${JSON.stringify(never)}`);
      }
    }
  }

  /** A binary message: a `records` push on brook.v1.bin; anything else is reported. */
  private onBinary(data: unknown): void {
    if (!this.binary) {
      this.report(new ProtocolError('the server sent a binary frame on the JSON subprotocol'));
      return;
    }
    if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
      this.report(new ProtocolError('the server sent a binary frame the WebSocket did not hand over as bytes'));
      return;
    }
    let frame;
    try {
      frame = decodePushFrame(data);
    } catch (err) {
      // Dropping the frame would leave a gap the subscription never notices: reconnect instead,
      // so every consumer resubscribes from the last record it delivered.
      this.report(asClientError(err));
      if (this.socket !== null) this.abandon(this.socket, 'a push could not be decoded');
      return;
    }
    // A kind from a newer server (the SDK neither fetches nor expects other kinds): ignored.
    if (frame !== null) this.routeOf(frame.sub)?.records(frame);
  }

  private onWelcome(session: string, limits: ServerLimits): void {
    clearTimeout(this.welcomeTimer);
    if (this.stateValue !== 'connecting') return;
    const reconnect = this.everOpened;
    this.everOpened = true;
    this.attempt = 0;
    this.sessionId = session;
    this.limitsValue = limits;
    this.stateValue = 'open';
    this.events.emit('connected', { session, limits, reconnect });
    for (const hook of [...this.openHooks]) hook(reconnect);
    for (let w = this.readyWaiters.shift(); w !== undefined; w = this.readyWaiters.shift()) w.resolve();
    this.requestGate.pump();
    this.produceGate.pump();
  }

  private afterSocketClosed(code: number, reason: string): void {
    clearTimeout(this.welcomeTimer);
    const wasActive = this.stateValue === 'open' || this.stateValue === 'connecting';
    if (this.stateValue === 'open') this.stateValue = 'backoff';
    this.failPending(new ConnectionLostError(`connection lost (${code}${reason === '' ? '' : `: ${reason}`})`));
    if (!wasActive) return;
    // The node went away or refused us: the next attempt tries the next one.
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    this.events.emit('disconnected', { code, reason });
    const fatal =
      code === FRAME_TOO_LARGE || code === MALFORMED_FRAMES || (code === POLICY && typeof this.options.token !== 'function');
    if (fatal) {
      this.shutdown(new ConnectionClosedError(code, reason), null, '');
      return;
    }
    if (this.reconnect === null || this.attempt >= this.reconnect.maxAttempts) {
      this.shutdown(
        new ConnectionLostError(
          this.reconnect === null ? `connection lost (${code}) and reconnect is off` : `gave up after ${this.attempt} reconnect attempts`,
        ),
        null,
        '',
      );
      return;
    }
    const delayMs = fullJitter(this.attempt, this.reconnect);
    this.attempt++;
    this.stateValue = 'backoff';
    this.events.emit('reconnecting', { attempt: this.attempt, delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === 'backoff') this.startAttempt();
    }, delayMs);
  }

  private shutdown(err: Error, code: number | null, reason: string): void {
    if (this.stateValue === 'closed') return;
    const fatal = !(err instanceof ClientClosedError);
    this.stateValue = 'closed';
    this.failure = err;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.welcomeTimer);
    clearTimeout(this.pauseTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket !== null && code !== null) closeQuietly(socket, code, reason);
    this.failPending(err);
    for (let w = this.readyWaiters.shift(); w !== undefined; w = this.readyWaiters.shift()) w.reject(err);
    this.produceGate.rejectAll(err);
    this.requestGate.rejectAll(err);
    if (fatal) this.report(asClientError(err));
    for (const hook of [...this.closeHooks]) hook(err);
  }

  // ── requests ──────────────────────────────────────────────────────────────────────────────

  /** Sends one request holding a place in `gate`, which it leaves when the request settles. */
  private send<T extends Reply['type']>(
    gate: Gate,
    build: (id: number) => string | Uint8Array,
    type: string,
    expect: T,
  ): Promise<Extract<Reply, { type: T }>> {
    if (this.stateValue !== 'open' || this.socket === null) {
      gate.leave();
      return Promise.reject(this.failure ?? new ConnectionLostError(`not connected (sending ${type})`));
    }
    if (this.pending.size >= this.maxPending) {
      gate.leave();
      return Promise.reject(new TooManyPendingRequestsError(this.maxPending));
    }
    const id = this.nextId++;
    const socket = this.socket;
    return new Promise<Extract<Reply, { type: T }>>((resolve, reject) => {
      const pending: Pending = { type, expect, resolve, reject, deadline: performance.now() + this.requestTimeoutMs, gate };
      this.pending.set(id, pending);
      this.timeoutSweep ??= this.armTimeoutSweep(this.requestTimeoutMs);
      // Nothing goes out when either throws: the gate place is given back now, not when the
      // timeout sweep gets to the request.
      let frame: string | Uint8Array;
      try {
        frame = build(id);
      } catch (err) {
        // A value JSON cannot encode (a BigInt, a cycle): the caller's mistake, not retriable.
        this.settle(id, pending);
        reject(new InvalidArgumentError(`could not encode ${type}: ${(err as Error).message}`, { cause: err }));
        return;
      }
      try {
        socket.send(frame);
      } catch (err) {
        this.settle(id, pending);
        reject(new ConnectionLostError(`could not send ${type}: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  /** Settles a pending request with the server's reply. */
  private resolvePending(id: number | string, p: Pending, reply: Reply): void {
    this.settle(id, p);
    if (reply.type === p.expect) (p.resolve as (reply: Reply) => void)(reply);
    else p.reject(new ProtocolError(`expected ${p.expect} in reply to ${p.type}, got ${reply.type}`));
  }

  private settle(id: number | string, p: Pending): void {
    this.pending.delete(id);
    p.gate.leave();
  }

  /**
   * One timer for every request's timeout instead of one per request: requests are pending in
   * sending order with the same timeout, so the oldest deadline comes first. The sweep fails
   * what has expired and sleeps until the next deadline; with nothing pending it stops (and
   * closing fails everything pending and clears it).
   */
  private armTimeoutSweep(ms: number): ReturnType<typeof setTimeout> {
    return setTimeout(() => this.sweepTimeouts(), ms);
  }

  private sweepTimeouts(): void {
    this.timeoutSweep = undefined;
    const now = performance.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) {
        this.timeoutSweep = this.armTimeoutSweep(p.deadline - now);
        return;
      }
      this.settle(id, p);
      p.reject(new RequestTimeoutError(p.type, this.requestTimeoutMs));
    }
  }

  private failPending(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    clearTimeout(this.timeoutSweep);
    this.timeoutSweep = undefined;
    for (const p of all) {
      p.gate.leave();
      p.reject(err);
    }
  }

  // ── produce flow control ──────────────────────────────────────────────────────────────────

  private paused(): boolean {
    return Date.now() < this.pausedUntil;
  }

  /** `slow_down`: no produce frame leaves until the pause is over. */
  private pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
    this.armPauseTimer();
  }

  /**
   * Timers may fire a millisecond before `Date.now()` reaches `pausedUntil`; pumping then would
   * find the gate still paused and nothing would pump it again, so re-arm until it is over.
   */
  private armPauseTimer(): void {
    clearTimeout(this.pauseTimer);
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = undefined;
      if (this.paused()) this.armPauseTimer();
      else this.produceGate.pump();
    }, Math.max(1, this.pausedUntil - Date.now()));
  }

  private routeOf(sub: string): PushHandlers | undefined {
    return this.routes.get(sub) ?? this.routes.get(groupPrefixOf(sub));
  }
}

export function groupSubPrefix(group: string): string {
  return `group:${group}:`;
}

/** `group:<group>:<topic>:<partition>` → `group:<group>:` (topic names cannot contain ':'). */
function groupPrefixOf(sub: string): string {
  if (!sub.startsWith('group:')) return '';
  const last = sub.lastIndexOf(':');
  const topicStart = last <= 0 ? -1 : sub.lastIndexOf(':', last - 1);
  return topicStart <= 0 ? '' : sub.slice(0, topicStart + 1);
}

/** `http(s)://host[/]` or `ws(s)://host[/]` become `ws(s)://host/v1/ws`; a path given is kept. */
export function wsUrl(base: string, token: string | undefined): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch (err) {
    throw new InvalidArgumentError(`invalid url ${JSON.stringify(base)}`, { cause: err });
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new InvalidArgumentError(`url must be http(s) or ws(s), got ${JSON.stringify(url.protocol)}`);
  }
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/v1/ws';
  // Browsers cannot set an Authorization header on a WebSocket, so the token goes in the query.
  if (token !== undefined) url.searchParams.set('token', token);
  return url.toString();
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(value > 0)) throw new InvalidArgumentError(`${name} must be positive, got ${value}`);
  return value;
}

function closeQuietly(socket: WebSocketLike, code: number, reason: string): void {
  try {
    if (socket.readyState === OPEN) socket.close(code, reason);
    else socket.close();
  } catch (err) {
    // Closing a socket that is already closing can throw in some implementations; it is going
    // away either way, and its events are ignored from here on.
    void err;
  }
}

function asClientError(err: unknown): BrookClientError {
  if (err instanceof BrookClientError) return err;
  return new ProtocolError(err instanceof Error ? err.message : String(err), { cause: err });
}
