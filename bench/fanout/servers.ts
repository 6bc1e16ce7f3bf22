/**
 * The fan-out benchmark's servers, one per child process (`node --expose-gc --import tsx
 * bench/fanout/servers.ts <system>`): Brook's `/v1/realtime`, Socket.IO with rooms over the
 * websocket transport, and a naive `ws` broadcast loop. Each listens on a free loopback port, says
 * `{ready, port}` over IPC and answers `{cmd:'rss'}` with its RSS after a full GC.
 *
 * The publisher is a client like the subscribers: Brook gets `publish` frames on channel
 * `bench:fan`; Socket.IO a `pub` event that the server emits to room `bench`; the naive server a
 * message on `/pub` that it sends to every other connection.
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';

type Reply = { ready: true; port: number } | { rss: number; heapUsed: number };
const send = (m: Reply): void => void process.send?.(m);
const gc = (globalThis as { gc?: () => void }).gc;

/** One `bench` namespace with a short history, and limits out of the way of the load. */
const BENCH_CHANNELS = {
  namespaces: [{ name: 'bench', history: { size: 100, ttlMs: 60_000 } }],
  realtime: { maxConnections: 1_000_000, publishRate: 1e9, publishBurst: 1e9, maxChannelsPerConnection: 10 },
  maxChannels: 2_000_000,
};

async function brook(): Promise<number> {
  const { EmbeddedEngine } = await import('../../src/engine/embedded/index.js');
  const { createServer } = await import('../../src/server/index.js');
  const dir = mkdtempSync(join(process.env['BENCH_DIR'] ?? tmpdir(), 'brook-fanout-'));
  const logger = pino({ level: 'warn' });
  const engine = new EmbeddedEngine({ dataDir: dir, logger });
  await engine.open();
  const server = await createServer({
    engine,
    host: '127.0.0.1',
    port: 0,
    logger,
    channels: BENCH_CHANNELS,
  });
  process.once('disconnect', () => {
    void server.close().then(() => engine.close()).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
  return server.port;
}

/**
 * Brook on the JetStream engine with the channel cluster (docs/channels.md, "Several nodes"): the
 * 2-node fan-out run starts two of these on one NATS (`BENCH_NATS`) and prefix (`BENCH_NATS_PREFIX`).
 */
async function brookCluster(): Promise<number> {
  const { JetStreamEngine } = await import('../../src/engine/jetstream/index.js');
  const { createServer } = await import('../../src/server/index.js');
  const logger = pino({ level: 'warn' });
  const engine = new JetStreamEngine({ servers: process.env['BENCH_NATS'] ?? 'nats://127.0.0.1:4222', prefix: process.env['BENCH_NATS_PREFIX'] ?? 'BENCHFAN', logger });
  await engine.open();
  const server = await createServer({
    engine,
    host: '127.0.0.1',
    port: 0,
    logger,
    channels: { ...BENCH_CHANNELS, cluster: 'jetstream' },
  });
  process.once('disconnect', () => {
    void server.close().then(() => engine.close()).finally(() => process.exit(0));
  });
  return server.port;
}

async function socketIo(): Promise<number> {
  const { Server } = await import('socket.io');
  const http = createHttpServer();
  const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  io.on('connection', (socket) => {
    if (socket.handshake.query['role'] === 'pub') {
      socket.on('pub', (data: unknown) => io.to('bench').emit('msg', data));
      socket.on('pubTo', (room: string, data: unknown) => io.to(room).emit('msg', data));
    } else {
      void socket.join('bench');
      // Its own room too, for the many-channels run.
      const i = socket.handshake.query['i'];
      if (typeof i === 'string') void socket.join(`c${i}`);
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  process.once('disconnect', () => process.exit(0));
  return (http.address() as AddressInfo).port;
}

async function naiveWs(): Promise<number> {
  const http = createHttpServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const subscribers = new Set<WebSocket>();
  const byIndex = new Map<string, WebSocket>();
  wss.on('connection', (ws, req) => {
    if (req.url?.startsWith('/pubto')) {
      // "<index>|<payload>": to one connection (the many-channels run).
      ws.on('message', (data: Buffer) => {
        const bar = data.indexOf(0x7c);
        byIndex.get(data.toString('latin1', 0, bar))?.send(data.subarray(bar + 1), { binary: false });
      });
      return;
    }
    if (req.url?.startsWith('/pub')) {
      ws.on('message', (data: Buffer) => {
        for (const s of subscribers) s.send(data, { binary: false });
      });
      return;
    }
    const i = /[?&]i=(\d+)/.exec(req.url ?? '')?.[1];
    if (i !== undefined) byIndex.set(i, ws);
    subscribers.add(ws);
    ws.on('close', () => {
      subscribers.delete(ws);
      if (i !== undefined) byIndex.delete(i);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  process.once('disconnect', () => process.exit(0));
  return (http.address() as AddressInfo).port;
}

const system = process.argv[2];
const port = system === 'brook' ? await brook() : system === 'brook-cluster' ? await brookCluster() : system === 'socketio' ? await socketIo() : system === 'ws' ? await naiveWs() : null;
if (port === null) throw new Error(`unknown system ${String(system)}`);
process.on('message', (m: { cmd: string }) => {
  if (m.cmd !== 'rss') return;
  for (let i = 0; i < 3; i++) gc?.();
  const usage = process.memoryUsage();
  send({ rss: usage.rss, heapUsed: usage.heapUsed });
});
send({ ready: true, port });
