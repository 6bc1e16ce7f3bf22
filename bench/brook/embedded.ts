import type { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { LogSystem } from '../lib/log-system.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import { EngineLogSystem } from './engine-ops.js';

/** Brook's embedded engine in the bench's own process, with its default durability (fsync). */
export class BrookEmbedded extends EngineLogSystem implements LogSystem {
  readonly name = 'brook-embedded' as const;
  readonly label = 'Brook in-process';
  readonly durability = 'Brook acks after a group-committed O_DSYNC write (as fdatasync; topic default durability "fsync").';

  protected override engine: EmbeddedEngine | null = null;
  private dataDir: string | null = null;

  constructor(private readonly root: string) {
    super();
  }

  async start(): Promise<void> {
    // Imported here so a broken engine build skips this system instead of the whole bench.
    const { EmbeddedEngine } = await import('../../src/engine/embedded/index.js');
    this.dataDir = makeTempDir(this.root, 'embedded');
    const engine = new EmbeddedEngine({ dataDir: this.dataDir });
    await engine.open();
    this.engine = engine;
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
