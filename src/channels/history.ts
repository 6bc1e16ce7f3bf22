import type { Publication } from './publication.js';

/**
 * The last `capacity` publications of a channel, oldest first, also bounded by age. A ring that
 * grows to its capacity only as messages arrive, so an idle channel with a large configured
 * history costs nothing until it is used.
 */
export class HistoryRing {
  private items: Publication[] = [];
  /** Index of the oldest item once the ring is full. */
  private head = 0;

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.items.length;
  }

  push(pub: Publication): void {
    if (this.capacity === 0) return;
    if (this.items.length < this.capacity) {
      this.items.push(pub);
      return;
    }
    this.items[this.head] = pub;
    this.head = (this.head + 1) % this.capacity;
  }

  /** Drops messages older than the ttl. */
  trim(now: number): void {
    const cutoff = now - this.ttlMs;
    let dropped = 0;
    const n = this.items.length;
    while (dropped < n && this.at(dropped)!.timestamp < cutoff) dropped++;
    if (dropped === 0) return;
    const kept: Publication[] = [];
    for (let i = dropped; i < n; i++) kept.push(this.at(i)!);
    this.items = kept;
    this.head = 0;
  }

  /** The oldest offset held, or null when empty. */
  firstOffset(): number | null {
    return this.items.length === 0 ? null : this.at(0)!.offset;
  }

  /** Publications with an offset greater than `offset`, oldest first, at most `limit`. */
  after(offset: number, limit = Number.POSITIVE_INFINITY): Publication[] {
    const out: Publication[] = [];
    const n = this.items.length;
    // Binary search: offsets increase but may skip (a compacted source topic).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid)!.offset <= offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < n && out.length < limit; i++) out.push(this.at(i)!);
    return out;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }

  private at(i: number): Publication | undefined {
    return this.items.length < this.capacity ? this.items[i] : this.items[(this.head + i) % this.capacity];
  }
}
