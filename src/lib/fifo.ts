/** A queue with O(1) push and shift (Array#shift is O(n)). Bounds are the caller's job. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes every item for which `drop` returns true, keeping the order of the rest. */
  removeWhere(drop: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: T[] = [];
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i] as T;
      if (drop(item)) removed.push(item);
      else kept.push(item);
    }
    this.items = kept;
    this.head = 0;
    return removed;
  }

  clear(): T[] {
    return this.removeWhere(() => true);
  }

  [Symbol.iterator](): Iterator<T> {
    return (this.items.slice(this.head) as T[])[Symbol.iterator]();
  }
}
