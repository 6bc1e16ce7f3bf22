/** Starts a real server on an ephemeral port over a real embedded engine in a temp directory. */
import { pino } from 'pino';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { createServer, type BrookServer, type ServerOptions } from '../../src/server/index.js';
import { tempDir } from '../helpers/temp-dir.js';

export interface TestServer {
  readonly url: string;
  readonly engine: EmbeddedEngine;
  readonly server: BrookServer;
  cleanup(): Promise<void>;
}

export async function setup(
  options: Partial<Omit<ServerOptions, 'engine' | 'host' | 'port' | 'logger'>> = {},
): Promise<TestServer> {
  const dir = await tempDir('brook-server-test-');
  const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
  const engine = new EmbeddedEngine({ dataDir: dir.path, logger });
  await engine.open();
  const server = await createServer({ engine, host: '127.0.0.1', port: 0, logger, ...options });
  return {
    url: server.url,
    engine,
    server,
    async cleanup() {
      await server.close();
      await engine.close();
      await dir.remove();
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  /** Parsed JSON body, or null for an empty one. */
  readonly body: unknown;
}

/**
 * One request. A string body is sent as it is, anything else as JSON; the content type is JSON
 * unless `headers` sets one (an empty string leaves it out).
 */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const sent: Record<string, string> = { ...headers };
  let payload: string | Uint8Array | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    if (sent['content-type'] === undefined) sent['content-type'] = 'application/json';
    // A Uint8Array body makes fetch add no content type of its own.
    if (sent['content-type'] === '') {
      delete sent['content-type'];
      payload = Buffer.from(payload);
    }
  }
  const res = await fetch(base + path, {
    method,
    headers: sent,
    ...(payload === undefined ? {} : { body: payload }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? null : (JSON.parse(text) as unknown) };
}

/** The error code of an error answer. */
export function codeOf(answer: Answer): string | undefined {
  const body = answer.body as { error?: { code?: unknown; message?: unknown } } | null;
  return typeof body?.error?.code === 'string' ? body.error.code : undefined;
}
