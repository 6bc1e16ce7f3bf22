import { freePort, type ChildServer } from '../lib/processes.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import { BrookHttpClient } from './http-client.js';
import { startBrookServer } from './server.js';

/**
 * A Brook server the bench owns as a child process (`startBrookServer`: loopback, an ephemeral
 * port, its own temp data directory, killed with the bench however it exits), with an HTTP client
 * for the admin calls the SDK has no frame for (creating and deleting topics).
 */
export class BrookProcess {
  private constructor(
    readonly port: number,
    readonly server: ChildServer,
    readonly http: BrookHttpClient,
    private readonly dataDir: string,
  ) {}

  /** `http://127.0.0.1:<port>`: the SDK's `url` (it adds `/v1/ws`). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `maxSockets`: keep-alive connections of `http` (requests beyond it wait for one). */
  static async start(root: string, serverBin: string, tempPrefix: string, maxSockets = 4): Promise<BrookProcess> {
    const port = await freePort();
    const dataDir = makeTempDir(root, tempPrefix);
    const http = new BrookHttpClient(port, maxSockets);
    try {
      const { server } = await startBrookServer(serverBin, dataDir, port, http);
      return new BrookProcess(port, server, http, dataDir);
    } catch (err) {
      http.close();
      await removeTempDir(dataDir);
      throw err;
    }
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.http.expect('POST', '/v1/topics', [201], JSON.stringify({ name: topic, partitions }));
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.http.expect('DELETE', `/v1/topics/${encodeURIComponent(topic)}`, [200, 202, 204, 404]);
  }

  /** SIGTERM (SIGKILL after 15 s), then removes the data directory. */
  async stop(): Promise<void> {
    try {
      this.http.close();
      await this.server.stop();
    } finally {
      await removeTempDir(this.dataDir);
    }
  }
}
