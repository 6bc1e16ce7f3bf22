import { describe, expect, it } from 'vitest';
import { OWN_BUFFER_BYTES, TailCache, TailCacheBudget } from '../../src/engine/embedded/tail-cache.js';

const batch = (baseOffset: number, count: number, bytes: number) => ({ baseOffset, endOffset: baseOffset + count, buf: Buffer.alloc(bytes) });

describe('tail cache', () => {
  it('keeps each partition under its cap and the engine under its budget', () => {
    const budget = new TailCacheBudget(10_000, 4_000);
    const a = new TailCache(budget);
    const b = new TailCache(budget);
    for (let i = 0; i < 100; i++) {
      a.add(batch(i * 10, 10, 1000));
      b.add(batch(i * 10, 10, 1000));
      expect(budget.used).toBeLessThanOrEqual(10_000);
    }
    expect(budget.used).toBe(8000);
    expect(a.firstOffset).toBe(960);
    expect(a.find(995)).toBeGreaterThanOrEqual(0);
    expect(a.at(a.find(995))?.baseOffset).toBe(990);
    expect(a.find(1000)).toBe(-1);
  });

  it('shares the engine budget: a full budget evicts the adding partition first', () => {
    const budget = new TailCacheBudget(3000, 3000);
    const a = new TailCache(budget);
    const b = new TailCache(budget);
    for (let i = 0; i < 3; i++) a.add(batch(i, 1, 1000));
    b.add(batch(0, 1, 1000));
    expect(budget.used).toBeLessThanOrEqual(3000);
    expect(b.firstOffset).toBeNull();
    a.clear();
    expect(budget.used).toBe(0);
  });

  it('drops a batch too large to cache and everything before it, staying contiguous', () => {
    const budget = new TailCacheBudget(10_000, 2_000);
    const cache = new TailCache(budget);
    cache.add(batch(0, 1, 500));
    cache.add(batch(1, 1, 5000));
    expect(cache.firstOffset).toBeNull();
    expect(budget.used).toBe(0);
    cache.add(batch(2, 1, 500));
    expect(cache.firstOffset).toBe(2);
    cache.dropBefore(3);
    expect(cache.firstOffset).toBeNull();
    expect(budget.used).toBe(0);
  });

  it('packs small batches into a few growing slabs, serves exact copies, and frees a slab with its last batch', () => {
    const budget = new TailCacheBudget(64 * 1024 * 1024, 4 * 1024 * 1024);
    const cache = new TailCache(budget);
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < 1000; i++) {
      const buf = Buffer.alloc(4000, i % 251);
      cache.add({ baseOffset: i, endOffset: i + 1, buf });
      const cached = cache.at(cache.find(i))!;
      // A copy: what the writer does with its buffer afterwards cannot change the cache.
      buf.fill(0);
      expect(cached.buf.equals(Buffer.alloc(4000, i % 251))).toBe(true);
      buffers.add(cached.buf.buffer);
    }
    // 4 MB of batches in slabs of 16 KiB doubling to 1 MiB: a handful of buffers, not a thousand.
    expect(buffers.size).toBeLessThan(12);
    expect(budget.used).toBeLessThanOrEqual(4 * 1024 * 1024);
    const first = cache.firstOffset!;
    expect(cache.at(cache.find(first))!.buf.equals(Buffer.alloc(4000, first % 251))).toBe(true);
    cache.dropBefore(1000);
    expect(cache.firstOffset).toBeNull();
    expect(budget.used).toBe(0);
  });

  it('keeps a large batch that owns its buffer without a copy, and copies one that is a slice', () => {
    const budget = new TailCacheBudget(64 * 1024 * 1024, 4 * 1024 * 1024);
    const cache = new TailCache(budget);
    const own = Buffer.allocUnsafeSlow(OWN_BUFFER_BYTES + 100).fill(7);
    cache.add({ baseOffset: 0, endOffset: 1000, buf: own });
    expect(cache.at(cache.find(0))!.buf).toBe(own); // the same buffer: no copy
    expect(budget.used).toBe(own.length); // counted exactly, not as a slab

    const backing = Buffer.alloc(2 * OWN_BUFFER_BYTES, 9);
    const slice = backing.subarray(10, 10 + OWN_BUFFER_BYTES);
    cache.add({ baseOffset: 1000, endOffset: 2000, buf: slice });
    const cached = cache.at(cache.find(1000))!.buf;
    expect(cached.buffer).not.toBe(backing.buffer); // copied: a slice would pin all of `backing`
    expect(cached.equals(slice)).toBe(true);

    cache.dropBefore(2000);
    expect(cache.firstOffset).toBeNull();
    expect(budget.used).toBe(0);
  });
});
