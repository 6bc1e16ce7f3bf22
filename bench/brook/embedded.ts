import type { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { LogSystem } from '../lib/log-system.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import type { Batch, PartitionReader } from '../lib/workload.js';
import { appendBatch, engineReader } from './engine-ops.js';

/** Brook's embedded engine in the bench's own process, with its default durability (fsync). */
export class BrookEmbedded implements LogSystem {
  readonly name = 'brook-embedded' as const;
  readonly label = 'Brook in-process';
  readonly durability = 'Brook acks after a group-committed fdatasync (topic default durability "fsync").';

  private engine: EmbeddedEngine | null = null;
  private dataDir: string | null = null;

  constructor(private readonly root: string) {}

  async start(): Promise<void> {
    // Imported here so a broken engine build skips this system instead of the whole bench.
    const { EmbeddedEngine } = await import('../../src/engine/embedded/index.js');
    this.dataDir = makeTempDir(this.root, 'embedded');
    const engine = new EmbeddedEngine({ dataDir: this.dataDir });
    await engine.open();
    this.engine = engine;
  }

  private open(): EmbeddedEngine {
    if (this.engine === null) throw new Error('brook-embedded is not started');
    return this.engine;
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.open().createTopic(topic, { partitions });
  }

  async publish(topic: string, batch: Batch): Promise<void> {
    await appendBatch(this.open(), topic, batch);
  }

  async reader(topic: string, partition: number): Promise<PartitionReader> {
    return engineReader(this.open(), topic, partition);
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.open().deleteTopic(topic);
  }

  async stop(): Promise<void> {
    try {
      await this.engine?.close();
    } finally {
      this.engine = null;
      if (this.dataDir !== null) await removeTempDir(this.dataDir);
      this.dataDir = null;
    }
  }
}
