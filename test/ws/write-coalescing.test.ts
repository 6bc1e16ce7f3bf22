/** The server's WebSocket connection hands frames sent in one burst to the socket in one write. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { Connection } from '../../src/server/ws/connection.js';

interface Pair {
  readonly connection: Connection;
  readonly socket: Socket;
  readonly client: WebSocket;
  /** Frames the client received, in order. */
  readonly received: string[];
  close(): Promise<void>;
}

async function pair(): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection') as Promise<[WebSocket, { socket: Socket }]>;
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const received: string[] = [];
  client.on('message', (data) => received.push(String(data)));
  const [ws, req] = await accepted;
  await once(client, 'open');
  const connection = new Connection(ws, req.socket, pino({ level: 'silent' }), 1 << 20);
  return {
    connection,
    socket: req.socket,
    client,
    received,
    async close() {
      client.terminate();
      ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Counts the socket's calls down into the stream implementation: one per write system call's worth. */
function countWrites(socket: Socket): { calls: number; chunks: number } {
  const counts = { calls: 0, chunks: 0 };
  const s = socket as unknown as {
    _write: (chunk: unknown, encoding: string, cb: () => void) => void;
    _writev: (chunks: unknown[], cb: () => void) => void;
  };
  const write = s._write.bind(socket);
  const writev = s._writev.bind(socket);
  s._write = (chunk, encoding, cb) => {
    counts.calls++;
    counts.chunks++;
    write(chunk, encoding, cb);
  };
  s._writev = (chunks, cb) => {
    counts.calls++;
    counts.chunks += chunks.length;
    writev(chunks, cb);
  };
  return counts;
}

const eventually = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('WebSocket connection write coalescing', () => {
  let current: Pair | null = null;
  afterEach(async () => {
    await current?.close();
    current = null;
  });

  it('sends frames of one burst in one write, in order', async () => {
    const p = (current = await pair());
    const counts = countWrites(p.socket);
    for (let i = 0; i < 20; i++) p.connection.send(`{"type":"ack","id":"${i}"}`);
    expect(counts.calls).toBe(0); // held until the burst's microtasks have run
    await eventually(() => p.received.length === 20);
    expect(p.received).toEqual(Array.from({ length: 20 }, (_, i) => `{"type":"ack","id":"${i}"}`));
    expect(counts.calls).toBe(1);
    expect(counts.chunks).toBeGreaterThanOrEqual(20);
  });

  it('frames sent from promise callbacks of the same turn join the burst', async () => {
    const p = (current = await pair());
    const counts = countWrites(p.socket);
    const settled = Array.from({ length: 5 }, (_, i) => Promise.resolve(i));
    for (const s of settled) void s.then((i) => p.connection.send(`{"n":${i}}`));
    await eventually(() => p.received.length === 5);
    expect(p.received).toEqual(['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    expect(counts.calls).toBe(1);
  });

  it('does not hold a frame back for later turns: each turn writes its own', async () => {
    const p = (current = await pair());
    const counts = countWrites(p.socket);
    for (let i = 0; i < 3; i++) {
      p.connection.send(`{"turn":${i}}`);
      await new Promise((r) => setImmediate(r));
      expect(counts.calls).toBe(i + 1);
    }
    await eventually(() => p.received.length === 3);
    expect(p.received).toEqual(['{"turn":0}', '{"turn":1}', '{"turn":2}']);
  });
});
