import { open, type FileHandle } from 'node:fs/promises';

interface Entry {
  handle: FileHandle;
  refs: number;
  closing: boolean;
}

/**
 * Read-only handles to sealed segments, bounded in number. Least recently used handles are
 * closed once nobody is reading through them; a handle in use is never closed under a reader.
 */
export class FdCache {
  private readonly entries = new Map<string, Entry>();
  private readonly opening = new Map<string, Promise<Entry>>();

  constructor(private readonly maxOpen: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Runs `fn` with an open handle for `path`, keeping it open for the duration. */
  async with<T>(path: string, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    const entry = await this.acquire(path);
    try {
      return await fn(entry.handle);
    } finally {
      entry.refs--;
      if (entry.closing && entry.refs === 0) await entry.handle.close();
      else this.evict();
    }
  }

  /** Closes the handle for `path` (file deleted or replaced); readers in flight finish first. */
  async invalidate(path: string): Promise<void> {
    const entry = this.entries.get(path);
    if (!entry) return;
    this.entries.delete(path);
    entry.closing = true;
    if (entry.refs === 0) await entry.handle.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.entries.keys()];
    await Promise.all(all.map((p) => this.invalidate(p)));
  }

  private async acquire(path: string): Promise<Entry> {
    const existing = this.entries.get(path);
    if (existing) {
      // Re-insert to mark as most recently used.
      this.entries.delete(path);
      this.entries.set(path, existing);
      existing.refs++;
      return existing;
    }
    let pending = this.opening.get(path);
    if (!pending) {
      pending = open(path, 'r').then((handle) => {
        const entry: Entry = { handle, refs: 0, closing: false };
        this.entries.set(path, entry);
        return entry;
      });
      this.opening.set(path, pending);
      // The open error reaches every caller awaiting `pending`; this derived chain only clears the
      // entry and must not raise a second, unhandled rejection.
      pending.finally(() => this.opening.delete(path)).catch(() => undefined);
    }
    const entry = await pending;
    entry.refs++;
    return entry;
  }

  private evict(): void {
    if (this.entries.size <= this.maxOpen) return;
    for (const [path, entry] of this.entries) {
      if (this.entries.size <= this.maxOpen) break;
      if (entry.refs > 0) continue;
      this.entries.delete(path);
      entry.closing = true;
      // Closing a read-only handle cannot lose data; a failure here only leaks one descriptor.
      entry.handle.close().catch(() => undefined);
    }
  }
}
