/**
 * The partition's flush loop keeps up to three large groups on their way to the disk at once and
 * publishes them in file order. The writes are held and released (or failed) from the test, so
 * the overlap and the ordering are observed, not hoped for.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { AppendResult } from '../../src/engine/index.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A batch of 300 KiB: more than the 256 KiB that lets a second write start beside a first. */
const bigBatch = (tag: string): { value: Buffer }[] => Array.from({ length: 3 }, (_, i) => ({ value: Buffer.alloc(100 * 1024, `${tag}${i}`) }));

interface HeldWrite {
  readonly bytes: number;
  /** Lets the write go to the disk (once; later calls do nothing); resolves when it is on disk. */
  release(): Promise<void>;
  fail(err: Error): void;
}

/** Holds every segment write (100 KiB or more) until the test releases or fails it. */
async function holdWrites(): Promise<{ held: HeldWrite[]; restore: () => void }> {
  const probe = await open(fileURLToPath(import.meta.url), 'r');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const original = proto.writev;
  const held: HeldWrite[] = [];
  const spy = vi.spyOn(proto, 'writev').mockImplementation(function (this: FileHandle, buffers, position) {
    const bytes = buffers.reduce((n, b) => n + b.byteLength, 0);
    if (bytes < 100 * 1024) return original.call(this, buffers, position);
    return new Promise((resolve, reject) => {
      let settled = false;
      let written: Promise<void> = Promise.resolve();
      held.push({
        bytes,
        release: () => {
          if (settled) return written;
          settled = true;
          const write = original.call(this, buffers, position);
          written = write.then(() => undefined, () => undefined);
          void write.then(resolve, reject);
          return written;
        },
        fail: (err) => {
          settled = true;
          reject(err);
        },
      });
    });
  });
  return { held, restore: () => spy.mockRestore() };
}

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function setup(): Promise<{ engine: EmbeddedEngine; held: HeldWrite[] }> {
  const dir = await tempDir();
  const engine = new EmbeddedEngine({ dataDir: dir.path });
  await engine.open();
  await engine.createTopic('g', { durability: 'fsync' });
  const { held, restore } = await holdWrites();
  // Runs in reverse: held writes go on (a failed test must not leave close() waiting), then close.
  cleanup.push(dir.remove, () => engine.close(), restore, () => held.forEach((w) => void w.release()));
  return { engine, held };
}

describe('pipelined group commit', () => {
  it('starts more large groups while the first is on its way, and acknowledges them in file order', async () => {
    const { engine, held } = await setup();
    const acks: string[] = [];
    const first = engine.append('g', 0, bigBatch('a')).then((r) => (acks.push('a'), r));
    await vi.waitFor(() => expect(held).toHaveLength(1));
    const second = engine.append('g', 0, bigBatch('b')).then((r) => (acks.push('b'), r));
    await vi.waitFor(() => expect(held).toHaveLength(2)); // both writes in flight
    const third = engine.append('g', 0, bigBatch('c')).then((r) => (acks.push('c'), r));
    await vi.waitFor(() => expect(held).toHaveLength(3)); // and a third beside them

    await held[1]!.release(); // a later write finishes first …
    await new Promise((r) => setImmediate(r)); // … and the engine has seen it
    expect(acks).toEqual([]); // … but nothing is acknowledged past the unfinished one
    expect((await engine.watermarks('g', 0)).highWatermark).toBe(0);

    void held[2]!.release();
    void held[0]!.release();
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(acks).toEqual(['a', 'b', 'c']);
    expect([a.baseOffset, b.baseOffset, c.baseOffset]).toEqual([0, 3, 6]);
    expect((await engine.watermarks('g', 0)).highWatermark).toBe(9);
    const read = await engine.read('g', 0, 0, { maxRecords: 10, maxBytes: 10 * 1024 * 1024 });
    expect(read.records.map((r) => Buffer.from(r.value!).subarray(0, 2).toString())).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'c0', 'c1', 'c2']);
  });

  it('small groups wait behind the write in flight and go out together', async () => {
    const { engine, held } = await setup();
    const first = engine.append('g', 0, bigBatch('a'));
    await vi.waitFor(() => expect(held).toHaveLength(1));
    const small = Array.from({ length: 5 }, (_, i) => engine.append('g', 0, [{ value: Buffer.alloc(30 * 1024, i) }]));
    // A few turns of the event loop: an eager engine would have dispatched a second write by now
    // (it does so from append and the flush loop's wake-up, both settled within them).
    for (let turn = 0; turn < 3; turn++) await new Promise((r) => setImmediate(r));
    expect(held).toHaveLength(1); // 150 KiB waiting: below the bound, so no second write yet
    void held[0]!.release();
    await first;
    await vi.waitFor(() => expect(held).toHaveLength(2));
    expect(held[1]!.bytes).toBeGreaterThanOrEqual(5 * 30 * 1024); // one write for all five
    void held[1]!.release();
    const results: AppendResult[] = await Promise.all(small);
    expect(results.map((r) => r.baseOffset)).toEqual([3, 4, 5, 6, 7]);
  });

  it('a failed write fails the group after it too, even when that one reached the disk', async () => {
    const { engine, held } = await setup();
    const first = engine.append('g', 0, bigBatch('a'));
    await vi.waitFor(() => expect(held).toHaveLength(1));
    const second = engine.append('g', 0, bigBatch('b'));
    await vi.waitFor(() => expect(held).toHaveLength(2));
    void held[1]!.release();
    held[0]!.fail(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
    await expect(first).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    await expect(second).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    expect((await engine.watermarks('g', 0)).highWatermark).toBe(0);
    await expect(engine.append('g', 0, [{ value: Buffer.from('later') }])).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
  });
});
