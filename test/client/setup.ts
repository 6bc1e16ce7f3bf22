/**
 * A real Brook server (embedded engine in a temp dir, ephemeral port) for SDK tests, with two
 * test-only instruments that sit outside the server:
 *
 * - a loopback TCP proxy in front of it, so a test can cut every client connection at once (the
 *   server sees its sockets close, the client sees an abnormal close, exactly as on a network
 *   failure) and clients reconnect through it;
 * - an optional gate on the engine's appends, so a test can hold produce acknowledgements and
 *   observe the client's backpressure through promise states rather than timing.
 */
import { pino } from 'pino';
import WebSocket from 'ws';
import { BrookClient, type ClientOptions } from '../../src/client/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { Engine } from '../../src/engine/index.js';
import { createServer, type BrookServer, type ServerOptions } from '../../src/server/index.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dir.js';

export interface ClientTestServer {
  /** The server itself. */
  readonly url: string;
  /** Through the proxy: use this for clients whose connection a test cuts. */
  readonly proxyUrl: string;
  readonly engine: EmbeddedEngine;
  readonly server: BrookServer;
  /** A client (ws as the WebSocket class) through the proxy, closed by cleanup(). */
  client(options?: Partial<ClientOptions>): BrookClient;
  /** Destroys every proxied connection, both sides. */
  cut(): void;
  /** Connections the proxy has accepted so far. */
  readonly proxied: number;
  cleanup(): Promise<void>;
}

export interface SetupOptions {
  readonly server?: Partial<Omit<ServerOptions, 'engine' | 'host' | 'port' | 'logger'>>;
  /** Wraps the engine the server sees (e.g. with an AppendGate). */
  readonly wrap?: (engine: Engine) => Engine;
}

export async function setup(options: SetupOptions = {}): Promise<ClientTestServer> {
  const dir = await tempDir('brook-client-test-');
  const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
  const engine = new EmbeddedEngine({ dataDir: dir.path, logger });
  await engine.open();
  const served = options.wrap ? options.wrap(engine) : engine;
  const server = await createServer({ engine: served, host: '127.0.0.1', port: 0, logger, ...options.server });
  const proxy = await tcpProxy(server.port);
  const clients = new Set<BrookClient>();
  return {
    url: server.url,
    proxyUrl: `http://127.0.0.1:${proxy.port}`,
    engine,
    server,
    client(opts = {}) {
      const client = new BrookClient({
        url: `http://127.0.0.1:${proxy.port}`,
        WebSocket,
        reconnect: { baseMs: 20, capMs: 200 },
        requestTimeoutMs: 10_000,
        closeTimeoutMs: 2_000,
        ...opts,
      });
      clients.add(client);
      return client;
    },
    // Drops the connections through the proxy; new ones go through (the client reconnects).
    cut: () => {
      proxy.cut();
      proxy.heal();
    },
    get proxied() {
      return proxy.accepted;
    },
    async cleanup() {
      await Promise.allSettled([...clients].map((c) => c.close()));
      await proxy.close();
      await server.close();
      await engine.close();
      await dir.remove();
    },
  };
}

/**
 * Holds the engine's appends (WebSocket and HTTP produce both end in `append` or `produce`)
 * until released one by one, and counts them.
 */
export class AppendGate {
  private held: { release: () => void }[] = [];
  private arrivals: { count: number; resolve: () => void }[] = [];
  calls = 0;
  closed = false;

  wrap(engine: Engine): Engine {
    const hold = async <T>(op: () => Promise<T>): Promise<T> => {
      this.calls++;
      for (const a of this.arrivals.filter((x) => x.count <= this.calls)) a.resolve();
      this.arrivals = this.arrivals.filter((x) => x.count > this.calls);
      if (!this.closed) await new Promise<void>((release) => this.held.push({ release }));
      return op();
    };
    return new Proxy(engine, {
      get: (target, prop, receiver) => {
        if (prop === 'append') {
          return (...args: Parameters<Engine['append']>) => hold(() => target.append(...args));
        }
        if (prop === 'produce') {
          return (...args: Parameters<Engine['produce']>) => hold(() => target.produce(...args));
        }
        if (prop === 'appendStored' && target.appendStored !== undefined) {
          return (...args: Parameters<NonNullable<Engine['appendStored']>>) => hold(() => target.appendStored!(...args));
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** Resolves once `count` appends have arrived in total. */
  arrived(count: number): Promise<void> {
    if (this.calls >= count) return Promise.resolve();
    return new Promise((resolve) => this.arrivals.push({ count, resolve }));
  }

  /** Lets the oldest held append go through. */
  releaseOne(): void {
    this.held.shift()?.release();
  }

  /** Lets every held append and every later one go through. */
  open(): void {
    this.closed = true;
    for (const h of this.held.splice(0)) h.release();
  }
}

export type PromiseState = 'pending' | 'fulfilled' | 'rejected';

/** Tracks a promise's state synchronously readable after `settle()`. */
export function track<T>(promise: Promise<T>): { readonly state: PromiseState; readonly promise: Promise<T> } {
  const t = { state: 'pending' as PromiseState, promise };
  promise.then(
    () => (t.state = 'fulfilled'),
    () => (t.state = 'rejected'),
  );
  return t;
}

/** Lets pending I/O callbacks and microtasks run (a few event-loop turns; not a timing wait). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Reads a partition straight from the engine. */
export async function readAll(engine: Engine, topic: string, partition: number): Promise<{ offset: number; value: unknown; key: string | null }[]> {
  const out: { offset: number; value: unknown; key: string | null }[] = [];
  let offset = (await engine.watermarks(topic, partition)).lowWatermark;
  for (;;) {
    const r = await engine.read(topic, partition, offset, { maxRecords: 10_000 });
    for (const rec of r.records) {
      out.push({
        offset: rec.offset,
        key: rec.key === null ? null : Buffer.from(rec.key).toString('utf8'),
        value: rec.value === null ? null : (JSON.parse(Buffer.from(rec.value).toString('utf8')) as unknown),
      });
    }
    if (r.records.length === 0 || r.nextOffset >= r.highWatermark) return out;
    offset = r.nextOffset;
  }
}

/** Takes `n` records from an async iterator (without closing it). */
export async function take<T>(iterator: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await iterator.next();
    if (r.done === true) break;
    out.push(r.value);
  }
  return out;
}
