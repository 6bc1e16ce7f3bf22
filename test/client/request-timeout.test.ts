/**
 * Request timeouts against a server that welcomes the client and then answers only what the test
 * tells it to: every unanswered request fails with REQUEST_TIMEOUT once its own timeout has
 * passed (one sweep serves them all), answered ones are not touched, and the gate places they
 * held are given back.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { BrookClient } from '../../src/client/index.js';

interface SilentServer {
  readonly url: string;
  /** Produce requests received (their ids), in order. */
  readonly produces: number[];
  /** Answers produce request `id` with an ack of one record at `offset`. */
  ack(id: number, offset: number): void;
  close(): Promise<void>;
}

async function silentServer(maxInflightProduce: number): Promise<SilentServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => [...protocols][0] ?? false });
  await once(wss, 'listening');
  const produces: number[] = [];
  let socket: WebSocket | null = null;
  wss.on('connection', (ws) => {
    socket = ws;
    ws.send(
      JSON.stringify({
        type: 'welcome',
        session: 's-1',
        limits: { max_frame_bytes: 1 << 20, max_inflight_produce: maxInflightProduce, max_record_bytes: 1 << 16, max_batch_records: 100, heartbeat_ms: 60_000 },
      }),
    );
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as { type: string; id: number };
      if (frame.type === 'produce') produces.push(frame.id);
    });
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    produces,
    ack(id, offset) {
      socket?.send(JSON.stringify({ type: 'produced', id, offsets: [{ partition: 0, offset }], duplicate: false }));
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

let server: SilentServer | undefined;
let client: BrookClient | undefined;
afterEach(async () => {
  client?.close();
  await server?.close();
  client = undefined;
  server = undefined;
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('request timeouts', () => {
  it('fails each unanswered request with REQUEST_TIMEOUT and leaves the answered ones alone', async () => {
    server = await silentServer(8);
    client = new BrookClient({ url: server.url, WebSocket, protocol: 'json', reconnect: false, requestTimeoutMs: 150 });
    await client.connect();
    const producer = client.producer<number>({ topic: 't', partition: 0, lingerMs: 0, retries: 0 });
    const first = producer.send({ value: 1 }).then(
      () => 'acked',
      (err: { code?: string }) => err.code,
    );
    await until(() => server!.produces.length === 1);
    server.ack(server.produces[0]!, 0);
    expect(await first).toBe('acked');

    const started = performance.now();
    const second = producer.send({ value: 2 }).catch((err: unknown) => err);
    await until(() => server!.produces.length === 2);
    expect(await second).toMatchObject({ code: 'REQUEST_TIMEOUT', retriable: true });
    // Not before its own timeout (the sweep armed by the first request must not cut it short).
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await producer.close().catch(() => undefined);
  });

  it('gives the produce gate back when requests time out, so later sends go out', async () => {
    server = await silentServer(1); // one produce frame in flight per connection
    client = new BrookClient({ url: server.url, WebSocket, protocol: 'json', reconnect: false, requestTimeoutMs: 100 });
    await client.connect();
    const a = client.producer<number>({ topic: 't', partition: 0, lingerMs: 0, retries: 0 });
    const b = client.producer<number>({ topic: 't', partition: 1, lingerMs: 0, retries: 0 });
    const outcomes = await Promise.all([a.send({ value: 1 }), b.send({ value: 2 })].map((p) => p.catch((err: { code?: string }) => err.code)));
    // The second waited at the gate until the first timed out, then was sent and timed out itself.
    expect(outcomes).toEqual(['REQUEST_TIMEOUT', 'REQUEST_TIMEOUT']);
    expect(server.produces).toHaveLength(2);
  });
});
