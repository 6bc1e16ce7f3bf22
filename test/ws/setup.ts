/**
 * A real server (ephemeral port, real embedded engine in a temp directory) and a small
 * WebSocket client that collects frames, for the streaming-protocol tests.
 */
import { pino } from 'pino';
import { WebSocket, type ClientOptions } from 'ws';
import { BinaryKind, decodeRecordFrame, encodeProduceFrame, type BinaryProduceHeader } from '../../src/broker/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { Engine, ProduceRecord } from '../../src/engine/index.js';
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
  /** Binary frames only: the value's bytes as received, and the record's encoded size (what byte credit counts). */
  readonly valueBytes?: Buffer | null;
  readonly size?: number;
}

/** A stored value as a JSON reader sees it: JSON when it parses, else the string. */
function valueOf(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * A binary push or fetch reply as a frame of the same shape as its JSON twin (`binary: true`),
 * so tests read both alike.
 */
function binaryFrame(data: Buffer): Frame {
  const decoded = decodeRecordFrame(data);
  const type = decoded.kind === BinaryKind.records ? 'records' : decoded.kind === BinaryKind.fetched ? 'fetched' : `kind-${decoded.kind}`;
  const records: PushedRecord[] = decoded.records.map((r) => ({
    offset: r.offset,
    key: r.key === null ? null : Buffer.from(r.key).toString('utf8'),
    value: r.value === null ? null : valueOf(Buffer.from(r.value)),
    headers: { ...r.headers },
    timestamp: r.timestamp,
    valueBytes: r.value === null ? null : Buffer.from(r.value),
    size: 26 + (r.key?.length ?? 0) + (r.value?.length ?? 0) + Object.entries(r.headers).reduce((n, [k, v]) => n + 6 + Buffer.byteLength(k) + Buffer.byteLength(v), 0),
  }));
  return { ...decoded.header, type, records, binary: true };
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
      this.frames.push(isBinary ? binaryFrame(data) : (JSON.parse(data.toString('utf8')) as Frame));
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

  /** Sends a binary produce frame (brook.v1.bin) and waits for the frame answering it. */
  async produceBinary(header: Omit<BinaryProduceHeader, 'id'>, records: readonly ProduceRecord[]): Promise<Frame> {
    const id = this.id();
    this.ws.send(encodeProduceFrame({ ...header, id }, records));
    return this.waitFor((f) => f['id'] === id);
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
