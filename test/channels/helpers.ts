/**
 * Helpers for the channel tests: a Brook server on a data directory that outlives it (to restart
 * on the same log), and a loopback TCP proxy whose connections can be cut (a dropped network,
 * seen by both sides as a reset) and whose target can move (a restarted server on a new port).
 */
import { createServer as createTcpServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { createServer, type BrookServer, type ServerOptions } from '../../src/server/index.js';

export interface RunningBrook {
  readonly server: BrookServer;
  readonly engine: EmbeddedEngine;
  stop(): Promise<void>;
}

export async function startBrook(dataDir: string, options: Partial<Omit<ServerOptions, 'engine' | 'host' | 'port' | 'logger'>> = {}): Promise<RunningBrook> {
  const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
  const engine = new EmbeddedEngine({ dataDir, logger });
  await engine.open();
  const server = await createServer({ engine, host: '127.0.0.1', port: 0, logger, ...options });
  return {
    server,
    engine,
    async stop() {
      await server.close();
      await engine.close();
    },
  };
}

export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly listener: Server,
    public targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<CuttableProxy> {
    const holder: { proxy?: CuttableProxy } = {};
    const listener = createTcpServer((client) => {
      const proxy = holder.proxy!;
      const upstream = connect(proxy.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        proxy.sockets.add(s);
        s.on('close', () => proxy.sockets.delete(s));
        s.on('error', () => undefined); // a cut connection errors on both ends; that is the point
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    holder.proxy = new CuttableProxy(listener, targetPort);
    return holder.proxy;
  }

  get port(): number {
    return (this.listener.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drops every proxied connection at once. */
  cut(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }
}
