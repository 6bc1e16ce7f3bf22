/**
 * A real server (ephemeral port, real embedded engine in a temp directory) and a small
 * WebSocket client that collects frames, for the streaming-protocol tests.
 */
import { pino } from 'pino';
import { WebSocket, type ClientOptions } from 'ws';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { Engine } from '../../src/engine/index.js';
import { createServer, type BrookServer, type ServerOptions } from '../../src/server/index.js';
import { tempDir } from '../helpers/temp-dir.js';

export interface WsTestServer {
  readonly url: string;
  readonly wsUrl: string;
  readonly engine: EmbeddedEngine;
  readonly server: BrookServer;
  cleanup(): Promise<void>;
}

export interface WsSetupOptions extends Partial<Omit<ServerOptions, 'engine' | 'host' | 'port' | 'logger'>> {
  /** Hands the server a wrapper of the real engine (to hold appends at a gate, for instance). */
  readonly wrapEngine?: (engine: EmbeddedEngine) => Engine;
}

export async function setup(options: WsSetupOptions = {}): Promise<WsTestServer> {
  const { wrapEngine, ...serverOptions } = options;
  const dir = await tempDir('brook-ws-test-');
  const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
  const engine = new EmbeddedEngine({ dataDir: dir.path, logger });
  await engine.open();
  const server = await createServer({
    engine: wrapEngine ? wrapEngine(engine) : engine,
    host: '127.0.0.1',
    port: 0,
    logger,
    ...serverOptions,
  });
  return {
    url: server.url,
    wsUrl: `${server.url.replace('http://', 'ws://')}/v1/ws`,
    engine,
    server,
    async cleanup() {
      await server.close();
      await engine.close();
      await dir.remove();
    },
  };
}

/** A frame as received: a parsed JSON object. */
export type Frame = Record<string, unknown> & { readonly type: string };

export interface PushedRecord {
  readonly offset: number;
  readonly key: string | null;
  readonly value: unknown;
  readonly headers: Record<string, string>;
  readonly timestamp: number;
}

const WAIT_MS = 15_000;

/** A protocol client over `ws` that records every frame it receives. */
export class WsClient {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly watchers = new Set<() => void>();
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) throw new Error('the server sent a binary frame');
      this.frames.push(JSON.parse(data.toString('utf8')) as Frame);
      this.notify();
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => {
        resolve({ code, reason: reason.toString('utf8') });
        this.notify();
      });
    });
    ws.on('error', () => {
      // Surfaces as a close (1006 or the server's code), which the tests assert on.
    });
  }

  /** Connects and waits for the `welcome` frame. */
  static async connect(url: string, options: ClientOptions & { protocols?: string | string[] } = {}): Promise<WsClient> {
    const { protocols, ...rest } = options;
    const ws = new WebSocket(url, protocols, rest);
    const client = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake answered ${res.statusCode}`)));
    });
    return client;
  }

  /** Connects and returns the first frame (welcome). */
  async welcome(): Promise<Frame> {
    return this.waitFor((f) => f.type === 'welcome');
  }

  send(frame: Record<string, unknown> | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  id(): number {
    return this.nextId++;
  }

  /** Sends a request (an `id` is added) and waits for the frame answering it (reply or error). */
  async request(frame: Record<string, unknown>): Promise<Frame> {
    const id = this.id();
    this.send({ ...frame, id });
    return this.waitFor((f) => f['id'] === id);
  }

  /** The first received frame (past or future) matching `predicate`. */
  waitFor(predicate: (frame: Frame) => boolean, timeoutMs = WAIT_MS): Promise<Frame> {
    return this.until(() => this.frames.find(predicate), timeoutMs, 'a matching frame');
  }

  /** Records pushed for `sub`, in arrival order. */
  records(sub: string): PushedRecord[] {
    const out: PushedRecord[] = [];
    for (const f of this.frames) if (f.type === 'records' && f['sub'] === sub) out.push(...(f['records'] as PushedRecord[]));
    return out;
  }

  /** Waits until at least `count` records were pushed for `sub`. */
  waitForRecords(sub: string, count: number, timeoutMs = WAIT_MS): Promise<PushedRecord[]> {
    return this.until(
      () => {
        const records = this.records(sub);
        return records.length >= count ? records : undefined;
      },
      timeoutMs,
      `${count} records on ${sub}`,
    );
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close(1000);
    return this.closed;
  }

  private notify(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  private until<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const found = probe();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const watcher = (): void => {
        const value = probe();
        if (value === undefined) return;
        this.watchers.delete(watcher);
        clearTimeout(timer);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.watchers.delete(watcher);
        const tail = this.frames.slice(-5).map((f) => JSON.stringify(f).slice(0, 300));
        reject(new Error(`timed out waiting for ${what}; last frames: ${tail.join(' | ')}`));
      }, timeoutMs);
      this.watchers.add(watcher);
    });
  }
}

/** Polls `probe` (server-side introspection) until it returns a value, within a bounded time. */
export async function eventually<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
