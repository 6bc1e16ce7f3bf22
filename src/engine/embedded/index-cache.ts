import type { SegmentIndex } from './segment-index.js';

/**
 * Indexes of sealed segments loaded in memory, bounded in number across the engine so memory
 * does not grow with the log: the least recently used index is dropped and reloaded on demand.
 */
export class IndexCache {
  private readonly entries = new Map<string, SegmentIndex>();

  constructor(private readonly maxEntries: number) {}

  get(path: string): SegmentIndex | undefined {
    const index = this.entries.get(path);
    if (index) {
      this.entries.delete(path);
      this.entries.set(path, index);
    }
    return index;
  }

  set(path: string, index: SegmentIndex): void {
    this.entries.delete(path);
    this.entries.set(path, index);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
  }

  delete(path: string): void {
    this.entries.delete(path);
  }
}
