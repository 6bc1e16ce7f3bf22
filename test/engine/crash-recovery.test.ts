/**
 * Crash tests with real processes: a child appends with durable acks while the test kills it
 * with SIGKILL at random moments. After every restart each acknowledged record must be present,
 * intact and in order, offsets contiguous, and no record may appear twice.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const WRITER = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
const CYCLES = 10;

interface Acked {
  partition: number;
  offset: number;
  id: string;
}

/** Runs the writer until it has acknowledged `acks` batches (or 5 s passed), then SIGKILLs it. */
function runAndKill(dataDir: string, runId: string, acks: number): Promise<Acked[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dataDir, runId], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: Acked[] = [];
    let batches = 0;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    const guard = setTimeout(kill, 15_000);
    let started = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'ready') {
        started = true;
        setTimeout(kill, 5_000);
        return;
      }
      const [tag, p, base, ids] = line.split(' ');
      if (tag !== 'ack' || !ids) return;
      ids.split(',').forEach((id, i) => acked.push({ partition: Number(p), offset: Number(base) + i, id }));
      if (++batches >= acks) kill();
    });
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      if (!started) reject(new Error(`writer never became ready (signal ${signal}): ${stderr}`));
      else resolve(acked);
    });
  });
}

describe('crash recovery with SIGKILL', () => {
  it(`keeps every acknowledged record across ${CYCLES} random kills`, async () => {
    const dir = await tempDir();
    try {
      const expected = new Map<string, string>(); // "<partition>:<offset>" → id
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const acked = await runAndKill(dir.path, `c${cycle}`, 1 + Math.floor(Math.random() * 150));
        for (const a of acked) expected.set(`${a.partition}:${a.offset}`, a.id);

        const engine = new EmbeddedEngine({ dataDir: dir.path });
        await engine.open();
        try {
          const seen = new Set<string>();
          for (const partition of [0, 1]) {
            const { highWatermark, lowWatermark } = await engine.watermarks('crash', partition);
            expect(lowWatermark).toBe(0);
            let offset = 0;
            while (offset < highWatermark) {
              const { records, nextOffset } = await engine.read('crash', partition, offset, { maxRecords: 1000 });
              for (const r of records) {
                expect(r.offset).toBe(offset); // contiguous
                const { id } = JSON.parse(Buffer.from(r.value!).toString()) as { id: string };
                expect(Buffer.from(r.key!).toString()).toBe(id); // intact
                expect(seen.has(id)).toBe(false); // never twice
                seen.add(id);
                const want = expected.get(`${partition}:${offset}`);
                if (want !== undefined) expect(id).toBe(want); // acknowledged record in place
                offset++;
              }
              expect(nextOffset).toBe(offset);
            }
          }
          for (const id of expected.values()) expect(seen.has(id)).toBe(true);
        } finally {
          await engine.close();
        }
      }
      expect(expected.size).toBeGreaterThan(0);
    } finally {
      await dir.remove();
    }
  }, 180_000);
});
