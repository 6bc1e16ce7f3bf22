import { Redis } from 'ioredis';
import { ChildServer, freePort } from './processes.js';
import { makeTempDir, removeTempDir } from './temp.js';

export const REDIS_SERVER = 'redis-server';

/**
 * A redis-server the bench owns, in memory only (no RDB, no AOF): an ephemeral loopback port, its
 * own temp working directory, killed with the bench however the bench exits (see ChildServer).
 */
export class RedisServer {
  private constructor(
    readonly port: number,
    private readonly server: ChildServer,
    private readonly workDir: string,
  ) {}

  /** Starts one and waits until it answers PING; `tempPrefix` names its working directory. */
  static async start(root: string, tempPrefix: string): Promise<RedisServer> {
    const port = await freePort();
    const workDir = makeTempDir(root, tempPrefix);
    try {
      const { server } = await ChildServer.start({
        name: 'redis-server',
        command: REDIS_SERVER,
        args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir],
        ready: () => ping(port),
      });
      return new RedisServer(port, server, workDir);
    } catch (err) {
      await removeTempDir(workDir);
      throw err;
    }
  }

  /** A connected client that fails fast rather than queueing while disconnected. */
  async connect(): Promise<Redis> {
    const redis = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    await redis.connect();
    return redis;
  }

  /** SIGTERM (SIGKILL after 15 s), then removes the working directory. */
  async stop(): Promise<void> {
    try {
      await this.server.stop();
    } finally {
      await removeTempDir(this.workDir);
    }
  }
}

async function ping(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined); // a refused probe is the expected "not yet"
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false; // not listening yet; the caller polls until its deadline
  } finally {
    probe.disconnect();
  }
}
