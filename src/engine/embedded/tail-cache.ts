/**
 * The most recently written batches of every partition, kept in memory so that consumers at the
 * tail (the common case) never touch the disk. One byte budget is shared by all partitions of
 * an engine; each partition also has its own cap so one hot partition cannot starve the rest.
 *
 * Batches are copied into slabs: a partition appends them back to back into a buffer of its own
 * and starts a bigger one when it is full (16 KiB, doubling up to a quarter of the partition's
 * cap); a slab is released once its last batch is evicted (readers may still hold views of it:
 * records are decoded zero-copy, so a slab is never written again). Memory counts whole slabs,
 * which is what is held.
 *
 * Why not keep each batch's own buffer: a cache of a thousand buffers that each live about a
 * second is what a generational GC handles worst — they outlive the young generation, and V8
 * frees the external memory they hold only at an old-space collection. Small batches were also
 * slices of Node's shared 8 KiB pool, each pinning its whole pool slab. At 10,000 CDC changes/s
 * slabs cut the server's old-space collections (5-15 ms pauses) from 11 to 8 in 15 s. Reusing
 * emptied slabs cut them to 5 but meant copying every batch a reader takes from the cache, which
 * cost a fifth of the SDK's consume rate at 1 KB records; not done. What worked instead is a
 * small per-partition cap (TAIL_CACHE_PER_PARTITION_BYTES, 512 KiB): slabs are evicted before
 * they reach the old generation, so scavenges free them (docs/runtime.md).
 *
 * A large batch (64 KiB or more) that owns its whole buffer is kept as it is, as a slab of its
 * own: no copy. Few of them fit a partition's cap, so they do not strain the collector the way
 * a thousand small ones did, and at 1 KB records in batches of 1,000 the copy was a megabyte
 * per batch on a server that was CPU-bound. The engine never writes a batch's buffer again.
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
/** A batch at least this large, in a buffer of its own, is cached without a copy. */
export const OWN_BUFFER_BYTES = 64 * 1024;
/**
 * "Of its own" allows this much else in the buffer: a batch a client built (binary produce kind
 * 0x05) is kept inside the WebSocket message that carried it, behind the frame's envelope.
 */
const OWN_BUFFER_SLACK_BYTES = 4096;

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

  constructor(private readonly budget: TailCacheBudget) {}

  /** First offset served from memory, or null when the cache is empty. */
  get firstOffset(): number | null {
    const first = this.batches[this.head];
    return first ? first.baseOffset : null;
  }

  /**
   * Caches `batch` (copied into a slab, or, when large and (nearly) alone in its buffer, kept as it is);
   * it is served from here until evicted. The caller must not write to `batch.buf` again.
   */
  add(batch: CachedBatch): void {
    const length = batch.buf.length;
    if (length > this.budget.perPartitionBytes) {
      // Too big to cache: drop everything so the cache still covers a contiguous tail.
      this.clear();
      return;
    }
    let slab: Slab;
    let buf: Buffer;
    if (length >= OWN_BUFFER_BYTES && batch.buf.buffer.byteLength - length <= OWN_BUFFER_SLACK_BYTES) {
      slab = { buf: batch.buf, used: length, live: 1 };
      buf = batch.buf;
      this.bytes += length;
      this.budget.used += length;
    } else {
      slab = this.slabFor(length);
      buf = slab.buf.subarray(slab.used, slab.used + length);
      batch.buf.copy(buf);
      slab.used += length;
      slab.live++;
    }
    this.batches.push({ baseOffset: batch.baseOffset, endOffset: batch.endOffset, buf, slab });
    while (
      this.head < this.batches.length &&
      (this.bytes > this.budget.perPartitionBytes || this.budget.used > this.budget.limitBytes)
    ) {
      this.evictOldest();
    }
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

  /** Drops every cached batch. */
  clear(): void {
    this.budget.used -= this.bytes;
    this.batches = [];
    this.head = 0;
    this.bytes = 0;
    this.slab = null;
  }

  /** Forgets batches below `offset` (retention deleted them from disk). */
  dropBefore(offset: number): void {
    while (this.head < this.batches.length && this.batches[this.head]!.endOffset <= offset) this.evictOldest();
  }

  /** The slab the next `length` bytes go into: the current one, or a new one twice its size. */
  private slabFor(length: number): Slab {
    const current = this.slab;
    if (current !== null && current.buf.length - current.used >= length) return current;
    const maxSlab = Math.max(1, Math.floor(this.budget.perPartitionBytes / 4));
    const grown = current === null ? Math.min(MIN_SLAB_BYTES, maxSlab) : Math.min(current.buf.length * 2, maxSlab);
    const slab: Slab = { buf: Buffer.allocUnsafeSlow(Math.max(grown, length)), used: 0, live: 0 }; // a big batch gets its own
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
    // Not written again, even if it is the current one: readers may still hold views of it.
    if (slab === this.slab) this.slab = null;
    this.bytes -= slab.buf.length;
    this.budget.used -= slab.buf.length;
  }
}
