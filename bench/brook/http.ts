import type { LogSystem } from '../lib/log-system.js';
import { freePort, type ChildServer } from '../lib/processes.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import type { Batch, PartitionReader } from '../lib/workload.js';
import { BrookHttpClient, produceBody, readPage } from './http-client.js';
import { startBrookServer } from './server.js';

/**
 * The Brook server as a child process, driven over loopback HTTP/1.1 with keep-alive sockets,
 * one request per batch. Values travel as JSON strings whose encoding is the record's bytes.
 */
export class BrookHttp implements LogSystem {
  readonly name = 'brook-http' as const;
  readonly label = 'Brook HTTP';
  readonly durability = 'Brook acks after a group-committed O_DSYNC write (as fdatasync; topic default durability "fsync").';

  private server: ChildServer | null = null;
  private client: BrookHttpClient | null = null;
  private dataDir: string | null = null;

  constructor(
    private readonly root: string,
    private readonly serverBin: string,
    private readonly sockets: number,
  ) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.dataDir = makeTempDir(this.root, 'http');
    this.client = new BrookHttpClient(port, this.sockets);
    this.server = (await startBrookServer(this.serverBin, this.dataDir, port, this.client)).server;
  }

  private http(): BrookHttpClient {
    if (this.client === null) throw new Error('brook-http is not started');
    return this.client;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.http().expect('POST', '/v1/topics', [201], JSON.stringify({ name: topic, partitions }));
  }

  async publish(topic: string, batch: Batch): Promise<void> {
    const body = await this.http().expect('POST', `/v1/topics/${encodeURIComponent(topic)}/records`, [200, 201], produceBody(batch.partition, batch.texts()));
    const { offsets } = JSON.parse(body) as { offsets: unknown[] };
    if (offsets.length !== batch.values.length) throw new Error(`acknowledged ${offsets.length} of ${batch.values.length}`);
  }

  async reader(topic: string, partition: number): Promise<PartitionReader> {
    const client = this.http();
    let offset = 0;
    return {
      async next(max) {
        const page = await readPage(client, topic, partition, offset, max);
        offset = page.nextOffset;
        return page;
      },
      async close() {},
    };
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.http().expect('DELETE', `/v1/topics/${encodeURIComponent(topic)}`, [200, 202, 204, 404]);
  }

  async stop(): Promise<void> {
    try {
      this.client?.close();
      await this.server?.stop();
    } finally {
      this.client = null;
      this.server = null;
      if (this.dataDir !== null) await removeTempDir(this.dataDir);
      this.dataDir = null;
    }
  }
}
