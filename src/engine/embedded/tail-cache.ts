/**
 * The most recently written batches of every partition, kept in memory so that consumers at the
 * tail (the common case) never touch the disk. One byte budget is shared by all partitions of
 * an engine; each partition also has its own cap so one hot partition cannot starve the rest.
 *
 * Batches are copied into slabs: a partition appends them back to back into a buffer of its own
 * and starts a bigger one when it is full (16 KiB, doubling up to a quarter of the partition's
 * cap). A slab whose last batch is evicted becomes the partition's spare and is written again
 * when the current one fills, so a partition at a steady rate allocates nothing: its slabs go
 * round. Memory counts whole slabs (the spare too), which is what is held. Readers therefore get
 * copies ({@link TailCache.copyOf}), never views of a slab.
 *
 * Why not keep each batch's own buffer: a cache of a thousand buffers that each live about a
 * second is what a generational GC handles worst — they outlive the young generation, and V8
 * counts the external memory they free only at an old-space collection towards its next one. At
 * 10,000 CDC changes/s the server ran an old-space collection (a 5-15 ms pause) every second,
 * most of the CDC latency tail. Small batches were also slices of Node's shared 8 KiB pool, each
 * pinning its whole pool slab.
 */
export class TailCacheBudget {
  used = 0;
  constructor(
    readonly limitBytes: number,
    readonly perPartitionBytes: number,
  ) {}
}

export interface CachedBatch {
  readonly baseOffset: number;
  /** Offset after the batch's last record. */
  readonly endOffset: number;
  readonly buf: Buffer;
}

/** The first slab of a partition, unless its cap is smaller. */
const MIN_SLAB_BYTES = 16 * 1024;

interface Slab {
  readonly buf: Buffer;
  /** Bytes written so far. */
  used: number;
  /** Batches in it still cached; the slab's memory is released when this reaches zero. */
  live: number;
}

interface Entry extends CachedBatch {
  readonly slab: Slab;
}

export class TailCache {
  /** Slots before `head` are evicted and cleared, so they pin no memory. */
  private batches: Array<Entry | undefined> = [];
  private head = 0;
  /** Capacity of the slabs holding at least one cached batch. */
  private bytes = 0;
  private slab: Slab | null = null;
  /** An emptied slab kept for the next one (counted in `bytes`). */
  private spare: Slab | null = null;

  constructor(private readonly budget: TailCacheBudget) {}

  /** First offset served from memory, or null when the cache is empty. */
  get firstOffset(): number | null {
    const first = this.batches[this.head];
    return first ? first.baseOffset : null;
  }

  /** Copies `batch` into the cache; it is served from there until evicted. */
  add(batch: CachedBatch): void {
    const length = batch.buf.length;
    if (length > this.budget.perPartitionBytes) {
      // Too big to cache: drop everything so the cache still covers a contiguous tail.
      this.clear();
      return;
    }
    const slab = this.slabFor(length);
    const buf = slab.buf.subarray(slab.used, slab.used + length);
    batch.buf.copy(buf);
    slab.used += length;
    slab.live++;
    this.batches.push({ baseOffset: batch.baseOffset, endOffset: batch.endOffset, buf, slab });
    while (
      this.head < this.batches.length &&
      (this.bytes > this.budget.perPartitionBytes || this.budget.used > this.budget.limitBytes)
    ) {
      this.evictOldest();
    }
    // Over the engine's budget even when empty: the spare goes too.
    if (this.budget.used > this.budget.limitBytes) this.dropSpare();
    if (this.head > 64 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }

  /** Index of the first cached batch whose records reach `offset`, or -1. */
  find(offset: number): number {
    let lo = this.head;
    let hi = this.batches.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.batches[mid]!.endOffset > offset) {
        found = mid;
        hi = mid - 1;
      } else lo = mid + 1;
    }
    return found;
  }

  at(i: number): CachedBatch | undefined {
    return i >= this.head ? this.batches[i] : undefined;
  }

  /** A copy of a cached batch's bytes, safe to keep: the slab it is in will be written again. */
  static copyOf(batch: CachedBatch): Buffer {
    return Buffer.from(batch.buf);
  }

  /** Drops every cached batch. */
  clear(): void {
    this.budget.used -= this.bytes;
    this.batches = [];
    this.head = 0;
    this.bytes = 0;
    this.slab = null;
    this.spare = null;
  }

  /** Forgets batches below `offset` (retention deleted them from disk). */
  dropBefore(offset: number): void {
    while (this.head < this.batches.length && this.batches[this.head]!.endOffset <= offset) this.evictOldest();
    // Emptied by retention, not by new batches: nothing is coming to use a spare soon.
    if (this.head === this.batches.length) this.dropSpare();
  }

  /** The slab the next `length` bytes go into: the current one, or a new one twice its size. */
  private slabFor(length: number): Slab {
    const current = this.slab;
    if (current !== null && current.buf.length - current.used >= length) return current;
    const maxSlab = Math.max(1, Math.floor(this.budget.perPartitionBytes / 4));
    const grown = current === null ? Math.min(MIN_SLAB_BYTES, maxSlab) : Math.min(current.buf.length * 2, maxSlab);
    const size = Math.max(grown, length); // a batch bigger than a slab gets one of its own size
    const spare = this.spare;
    if (spare !== null && spare.buf.length >= size) {
      this.spare = null;
      spare.used = 0;
      this.slab = spare;
      return spare;
    }
    const slab: Slab = { buf: Buffer.allocUnsafeSlow(size), used: 0, live: 0 };
    this.slab = slab;
    this.bytes += slab.buf.length;
    this.budget.used += slab.buf.length;
    return slab;
  }

  private evictOldest(): void {
    const oldest = this.batches[this.head]!;
    this.batches[this.head] = undefined;
    this.head++;
    const slab = oldest.slab;
    if (--slab.live > 0) return;
    if (slab === this.slab) this.slab = null;
    // The biggest emptied slab is kept as the spare; the other is released.
    if (this.spare === null || this.spare.buf.length < slab.buf.length) {
      this.dropSpare();
      this.spare = slab;
    } else {
      this.release(slab);
    }
  }

  private dropSpare(): void {
    if (this.spare === null) return;
    this.release(this.spare);
    this.spare = null;
  }

  private release(slab: Slab): void {
    this.bytes -= slab.buf.length;
    this.budget.used -= slab.buf.length;
  }
}
