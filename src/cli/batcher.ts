/**
 * Groups items into batches sent one at a time, in order: a batch goes when it holds
 * `maxItems` items or `maxBytes` bytes, or `lingerMs` after its first item. At most one batch
 * is in flight while the next fills; `add` waits when both are full, which is what bounds
 * memory when the input is faster than the server. The first failed send fails every later
 * `add` and `close`, and nothing after it is sent.
 */
export class Batcher<T> {
  private items: T[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly options: {
      readonly maxItems: number;
      readonly maxBytes: number;
      readonly lingerMs: number;
      readonly send: (items: T[]) => Promise<void>;
    },
  ) {}

  async add(item: T, bytes: number): Promise<void> {
    if (this.failure) throw this.failure.error;
    if (this.items.length > 0 && this.bytes + bytes > this.options.maxBytes) await this.dispatch();
    this.items.push(item);
    this.bytes += bytes;
    if (this.items.length >= this.options.maxItems || this.bytes >= this.options.maxBytes) await this.dispatch();
    else this.timer ??= setTimeout(() => this.startSend(), this.options.lingerMs);
  }

  /** Sends what is left and waits for every send; rethrows the first failure. */
  async close(): Promise<void> {
    if (this.items.length > 0) this.startSend();
    await this.inFlight;
  }

  /** Waits for the batch in flight, then starts this one without waiting for it. */
  private async dispatch(): Promise<void> {
    await this.inFlight;
    this.startSend();
  }

  private startSend(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    const next = this.inFlight.then(() => this.options.send(items));
    // Recorded here so a failure from a timer-started send is not unhandled; add()/close() rethrow it.
    next.catch((error: unknown) => {
      this.failure ??= { error };
    });
    this.inFlight = next;
  }
}
