/**
 * The dedup ids a queue remembers (docs/queues.md, "Deduplication"): an enqueue whose `dedup_id`
 * was seen within `dedupWindowMs` gets the first message's id instead of a new message. Bounded
 * at `maxEntries`: past it the oldest id is forgotten (a late duplicate then becomes a message).
 */
interface DedupEntry {
  readonly at: number;
  /** The message id, or a promise of it while the first enqueue is being written. */
  id: number | Promise<number>;
}

export class DedupWindow {
  /** Insertion order is `at` order: ids are remembered when they are enqueued. */
  private readonly entries = new Map<string, DedupEntry>();

  constructor(
    private readonly windowMs: () => number,
    private readonly maxEntries: number,
  ) {}

  /** The message id (or its promise) of `dedupId` if seen within the window, else null. */
  lookup(dedupId: string, now: number): number | Promise<number> | null {
    const entry = this.entries.get(dedupId);
    if (!entry) return null;
    if (entry.at + this.windowMs() <= now) {
      this.entries.delete(dedupId);
      return null;
    }
    return entry.id;
  }

  remember(dedupId: string, id: number | Promise<number>, at: number): void {
    this.entries.delete(dedupId);
    this.entries.set(dedupId, { at, id });
    if (typeof id !== 'number') {
      // Once written, the entry holds the plain id (unless a newer enqueue replaced it meanwhile).
      void id.then(
        (n) => {
          const e = this.entries.get(dedupId);
          if (e && e.id === id) e.id = n;
        },
        () => undefined, // a failed write is forgotten by the enqueue that made it
      );
    }
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  forget(dedupId: string): void {
    this.entries.delete(dedupId);
  }

  /**
   * Drops ids whose window has passed and returns the lowest journal offset the rest still need:
   * the id of the oldest one, `pendingOffset` when it is still being written, Infinity for none.
   */
  expire(now: number, pendingOffset: number): number {
    for (const [dedupId, entry] of this.entries) {
      if (entry.at + this.windowMs() <= now) {
        this.entries.delete(dedupId);
        continue;
      }
      return typeof entry.id === 'number' ? entry.id : pendingOffset;
    }
    return Infinity;
  }
}
