import { ChildServer, freePort, isPortOpen } from './processes.js';
import { makeTempDir, removeTempDir } from './temp.js';

export const NATS_SERVER = '/usr/sbin/nats-server';

/**
 * A nats-server with JetStream (file storage) the bench owns: an ephemeral loopback port, its own
 * temp store directory, killed with the bench however the bench exits (see ChildServer).
 */
export class NatsServer {
  private constructor(
    readonly port: number,
    private readonly server: ChildServer,
    private readonly storeDir: string,
  ) {}

  /** `nats://127.0.0.1:<port>`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts one and waits until its port answers; `tempPrefix` names its store directory. */
  static async start(root: string, tempPrefix: string): Promise<NatsServer> {
    const port = await freePort();
    const storeDir = makeTempDir(root, tempPrefix);
    try {
      const { server } = await ChildServer.start({
        name: 'nats-server',
        command: NATS_SERVER,
        args: ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir],
        ready: () => isPortOpen(port),
      });
      return new NatsServer(port, server, storeDir);
    } catch (err) {
      await removeTempDir(storeDir);
      throw err;
    }
  }

  /** SIGTERM (SIGKILL after 15 s), then removes the store directory. */
  async stop(): Promise<void> {
    try {
      await this.server.stop();
    } finally {
      await removeTempDir(this.storeDir);
    }
  }
}
