/**
 * A loopback WebSocket server that welcomes the SDK and then answers only as a test tells it:
 * for the client paths a real server rarely takes (requests that get no answer, refusals in a
 * given order). Produce frames are decoded as the real server does, in both subprotocols.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach } from 'vitest';
import { decodeProduceFrame } from '../../src/broker/binary-frames.js';
import { BrookClient, type ClientOptions } from '../../src/client/index.js';

export interface ReceivedProduce {
  readonly id: number;
  readonly header: Readonly<Record<string, unknown>>;
}

export interface ScriptedServer {
  readonly url: string;
  /** Produce requests received, in order. */
  readonly produces: ReceivedProduce[];
  /** Types of the other (text) requests received, in order. */
  readonly requests: string[];
  /** Answers produce request `id` with an ack of one record at `offset`. */
  ack(id: number, offset: number): void;
  /** Answers request `id` with an error frame. */
  refuse(id: number, code: string, message?: string): void;
  close(): Promise<void>;
}

export interface ScriptedServerOptions {
  readonly maxInflightProduce?: number;
  /** `welcome.limits.max_inflight_requests`; absent (the client assumes 1) unless given. */
  readonly maxInflightRequests?: number;
  /** `welcome.limits.producer_batches`; absent as from an older server unless given. */
  readonly producerBatches?: number;
}

export async function scriptedServer(options: ScriptedServerOptions = {}): Promise<ScriptedServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => [...protocols][0] ?? false });
  await once(wss, 'listening');
  const produces: ReceivedProduce[] = [];
  const requests: string[] = [];
  let socket: WebSocket | null = null;
  wss.on('connection', (ws) => {
    socket = ws;
    ws.send(
      JSON.stringify({
        type: 'welcome',
        session: 's-1',
        limits: {
          max_frame_bytes: 1 << 20,
          max_inflight_produce: options.maxInflightProduce ?? 8,
          max_record_bytes: 1 << 16,
          max_batch_records: 100,
          heartbeat_ms: 60_000,
          ...(options.producerBatches === undefined ? {} : { producer_batches: options.producerBatches }),
          ...(options.maxInflightRequests === undefined ? {} : { max_inflight_requests: options.maxInflightRequests }),
        },
      }),
    );
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const decoded = decodeProduceFrame(data);
        if (!decoded.ok) throw new Error(decoded.message);
        produces.push({ id: Number(decoded.header.id), header: decoded.header });
        return;
      }
      const frame = JSON.parse(data.toString()) as { type: string; id: number };
      if (frame.type === 'produce') produces.push({ id: frame.id, header: frame });
      else requests.push(frame.type);
    });
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    produces,
    requests,
    ack(id, offset) {
      socket?.send(JSON.stringify({ type: 'produced', id, offsets: [{ partition: 0, offset }], duplicate: false }));
    },
    refuse(id, code, message = 'refused by the test') {
      socket?.send(JSON.stringify({ type: 'error', id, code, message }));
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Polls `check` every 10 ms for up to 5 s, then asserts it. */
export async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('condition not met within 5 s');
}

/**
 * For a test file: `start()` opens a scripted server and a connected client (no reconnect), and
 * both are closed after each test.
 */
export function scriptedSessions(): (
  options?: ScriptedServerOptions & { readonly client?: Partial<ClientOptions> },
) => Promise<{ server: ScriptedServer; client: BrookClient }> {
  let server: ScriptedServer | undefined;
  let client: BrookClient | undefined;
  afterEach(async () => {
    client?.close();
    await server?.close();
    client = undefined;
    server = undefined;
  });
  return async (options = {}) => {
    server = await scriptedServer(options);
    client = new BrookClient({ url: server.url, WebSocket, reconnect: false, ...options.client });
    await client.connect();
    return { server, client };
  };
}
