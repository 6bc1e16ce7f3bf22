/**
 * The most recently written batches of every partition, kept in memory so that consumers at the
 * tail (the common case) never touch the disk. One byte budget is shared by all partitions of
 * an engine; each partition also has its own cap so one hot partition cannot starve the rest.
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

export class TailCache {
  /** Slots before `head` are evicted and cleared, so they pin no memory. */
  private batches: Array<CachedBatch | undefined> = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly budget: TailCacheBudget) {}

  /** First offset served from memory, or null when the cache is empty. */
  get firstOffset(): number | null {
    const first = this.batches[this.head];
    return first ? first.baseOffset : null;
  }

  add(batch: CachedBatch): void {
    if (batch.buf.length > this.budget.perPartitionBytes) {
      // Too big to cache: drop everything so the cache still covers a contiguous tail.
      this.clear();
      return;
    }
    this.batches.push(batch);
    this.bytes += batch.buf.length;
    this.budget.used += batch.buf.length;
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
  }

  /** Forgets batches below `offset` (retention deleted them from disk). */
  dropBefore(offset: number): void {
    while (this.head < this.batches.length && this.batches[this.head]!.endOffset <= offset) this.evictOldest();
  }

  private evictOldest(): void {
    const oldest = this.batches[this.head]!;
    this.bytes -= oldest.buf.length;
    this.budget.used -= oldest.buf.length;
    this.batches[this.head] = undefined;
    this.head++;
  }
}
