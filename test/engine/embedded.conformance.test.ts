import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { Engine } from '../../src/engine/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { engineConformance } from './conformance.js';

engineConformance('embedded', async () => {
  const dir = await tempDir();
  let engine = new EmbeddedEngine({ dataDir: dir.path });
  await engine.open();
  return {
    engine,
    async reopen(): Promise<Engine> {
      await engine.close();
      engine = new EmbeddedEngine({ dataDir: dir.path });
      await engine.open();
      return engine;
    },
    async maintenance(e: Engine): Promise<void> {
      await (e as EmbeddedEngine).runMaintenance();
    },
    async cleanup(): Promise<void> {
      await engine.close();
      await dir.remove();
    },
  };
});
