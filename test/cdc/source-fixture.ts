/**
 * The setup most CDC test files share: a database of their own, an embedded engine in a temp
 * directory, and the CDC sources a test starts, all torn down after the file's tests. Call it
 * inside the file's `describe`; `onReady` hands the database and engine to the file's variables.
 */
import type { Logger } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { CdcSource, parseCdcSourceConfig, type CdcSourceInput } from '../../src/cdc/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { createTestDatabase, type TestDatabase } from './pg.js';

export interface SourceFixture {
  /** Starts a source on the file's database and engine (no heartbeats unless asked); stopped after the file. */
  startSource(input: Omit<CdcSourceInput, 'url'>): Promise<CdcSource>;
  stopSource(source: CdcSource): Promise<void>;
  /** A source the test built itself (another engine, say), stopped after the file like the others. */
  track(source: CdcSource): void;
}

export function sourceFixture(
  names: { readonly database?: string; readonly dirPrefix: string },
  logger: Logger,
  onReady: (db: TestDatabase, engine: EmbeddedEngine) => void,
): SourceFixture {
  let db: TestDatabase | undefined;
  let engine: EmbeddedEngine | undefined;
  let dir: { path: string; remove: () => Promise<void> } | undefined;
  const sources: CdcSource[] = [];
  beforeAll(async () => {
    db = await createTestDatabase(names.database);
    dir = await tempDir(names.dirPrefix);
    engine = new EmbeddedEngine({ dataDir: dir.path });
    await engine.open();
    onReady(db, engine);
  });
  afterAll(async () => {
    for (const s of sources) await s.stop();
    await engine?.close();
    await db?.drop();
    await dir?.remove();
  });
  return {
    async startSource(input) {
      const source = new CdcSource({ config: parseCdcSourceConfig({ url: db!.url, heartbeatIntervalMs: 0, ...input }), engine: engine!, logger });
      await source.start();
      sources.push(source);
      return source;
    },
    async stopSource(source) {
      await source.stop();
      sources.splice(sources.indexOf(source), 1);
    },
    track(source) {
      sources.push(source);
    },
  };
}
