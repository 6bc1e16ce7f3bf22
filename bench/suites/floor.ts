import { closeSync, fdatasyncSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';
import type { BenchOptions } from '../lib/args.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import { Latency, type LatencySummary } from '../lib/workload.js';

export interface FloorResult {
  readonly dir: string;
  readonly sequentialWrite: {
    readonly bytes: number;
    readonly chunkBytes: number;
    /** write() calls only: how fast the page cache takes the data. */
    readonly writeSeconds: number;
    /** The final fsync: the page cache drained to the device. */
    readonly fsyncSeconds: number;
    /** bytes / (write + fsync) — the bandwidth a durable sequential writer can reach (median run). */
    readonly mbPerSec: number;
    /** MB/s of every run, slowest first: the spread says how steady the device is. */
    readonly runs: readonly number[];
  };
  readonly fsyncLatency: LatencySummary & { readonly blockBytes: number };
}

const MiB = 1024 * 1024;
/** Sequential-write runs; the median is the figure (virtual disks vary from run to run). */
const SEQUENTIAL_RUNS = 3;

interface SequentialRun {
  readonly writeSeconds: number;
  readonly fsyncSeconds: number;
  readonly mbPerSec: number;
}

function sequentialWrite(path: string, chunk: Buffer, chunks: number): SequentialRun {
  const fd = openSync(path, 'w');
  try {
    const started = performance.now();
    for (let i = 0; i < chunks; i++) writeSync(fd, chunk);
    const written = performance.now();
    fsyncSync(fd);
    const writeSeconds = (written - started) / 1000;
    const fsyncSeconds = (performance.now() - written) / 1000;
    return { writeSeconds, fsyncSeconds, mbPerSec: (chunks * chunk.length) / 1e6 / (writeSeconds + fsyncSeconds) };
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
}

/**
 * The machine's physical floor, measured on the filesystem every data directory lives on:
 * sequential write bandwidth (MiB chunks, one fsync at the end; median of three runs) and the
 * latency of an appending 4 KiB write + fdatasync, which bounds what group commit can amortise.
 */
export async function runFloor(options: BenchOptions): Promise<FloorResult> {
  const dir = makeTempDir(options.dir, 'floor');
  try {
    const chunk = Buffer.allocUnsafe(MiB);
    randomFillSync(chunk); // incompressible, in case the device or filesystem compresses
    const chunks = Math.max(1, Math.round(options.floorBytes / MiB));
    const runs: SequentialRun[] = [];
    for (let i = 0; i < SEQUENTIAL_RUNS; i++) runs.push(sequentialWrite(join(dir, `sequential-${i}`), chunk, chunks));
    runs.sort((a, b) => a.mbPerSec - b.mbPerSec);
    const median = runs[Math.floor(runs.length / 2)] ?? runs[0];
    if (median === undefined) throw new Error('no sequential write run');
    const bytes = chunks * MiB;

    const block = chunk.subarray(0, 4096);
    const latency = new Latency();
    const syncPath = join(dir, 'fsync');
    const sfd = openSync(syncPath, 'w');
    try {
      for (let i = 0; i < options.fsyncRounds; i++) {
        const started = performance.now();
        writeSync(sfd, block);
        fdatasyncSync(sfd);
        latency.recordMs(performance.now() - started);
      }
    } finally {
      closeSync(sfd);
    }
    return {
      dir: options.dir,
      sequentialWrite: { bytes, chunkBytes: MiB, ...median, runs: runs.map((r) => r.mbPerSec) },
      fsyncLatency: { ...latency.summary(), blockBytes: 4096 },
    };
  } finally {
    await removeTempDir(dir);
  }
}
