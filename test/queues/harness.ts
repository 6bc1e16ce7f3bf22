import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { EngineQueueStorage, QueueManager, type QueueManagerOptions } from '../../src/queues/index.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A deterministic uniform [0, 1) source (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface QueueHarness {
  manager: QueueManager;
  engine: EmbeddedEngine;
  /** The injected clock; move it with `advance`. */
  now(): number;
  advance(ms: number): Promise<void>;
  /** Closes manager and engine and opens both again on the same directory. */
  reopen(): Promise<void>;
  cleanup(): Promise<void>;
}

/** `segmentBytes`: small queue-log segments, so truncation happens with little data. */
export async function queueHarness(options: Partial<QueueManagerOptions> = {}, segmentBytes?: number): Promise<QueueHarness> {
  const dir = await tempDir('brook-queues-');
  let clock = 1_700_000_000_000;
  const now = (): number => clock;
  const open = async (): Promise<{ engine: EmbeddedEngine; manager: QueueManager }> => {
    const engine = new EmbeddedEngine({ dataDir: dir.path, now });
    await engine.open();
    const manager = await QueueManager.open({
      engine,
      clock: now,
      random: seeded(42),
      timers: false,
      compactIntervalMs: 0,
      ...(segmentBytes === undefined ? {} : { storage: new EngineQueueStorage(engine, { segmentBytes }) }),
      ...options,
    });
    return { engine, manager };
  };
  let current = await open();
  const h: QueueHarness = {
    manager: current.manager,
    engine: current.engine,
    now,
    async advance(ms) {
      clock += ms;
      await h.manager.tick();
    },
    async reopen() {
      await h.manager.close();
      await h.engine.close();
      current = await open();
      h.manager = current.manager;
      h.engine = current.engine;
    },
    async cleanup() {
      await h.manager.close();
      await h.engine.close();
      await dir.remove();
    },
  };
  return h;
}

export const bytes = (s: string): Buffer => Buffer.from(s);
export const text = (b: Uint8Array): string => Buffer.from(b).toString();
