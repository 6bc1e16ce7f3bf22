/**
 * One system under test in the latency suite: a publisher and a consumer in the bench process,
 * each on its own connection, against a server the system owns. `send` must not wait: the suite
 * calls it on a fixed timeline and measures from the intended send time.
 */
export interface LatencySystem {
  readonly name: 'brook-sdk' | 'brook-jetstream' | 'nats-jetstream' | 'redis-pubsub' | 'node-floor';
  /** Short label for tables. */
  readonly label: string;
  /** When the consumer can see a record: printed under the table. */
  readonly durability: string;
  /** How the client is driven (options that matter to latency). */
  readonly how: string;
  start(): Promise<void>;
  /** Starts consuming from the first record; `onValue` gets each received value's bytes or text. */
  subscribe(onValue: (value: Uint8Array | string) => void): Promise<void>;
  /**
   * Publishes now (`value` as bytes, or `text`: a string whose JSON encoding is the same size),
   * resolving when the server acknowledged it.
   */
  send(value: Buffer, text: string): Promise<unknown>;
  /** Failures of the consumer and the client that no `send` reports (first few). */
  readonly failures: readonly string[];
  stop(): Promise<void>;
}

/** Keeps the first few failure messages and counts the rest. */
export class FailureLog {
  readonly first: string[] = [];
  count = 0;

  push(err: unknown): void {
    this.count++;
    if (this.first.length < 5) this.first.push(err instanceof Error ? err.message : String(err));
  }
}
