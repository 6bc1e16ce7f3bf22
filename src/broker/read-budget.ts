import { DEFAULT_MAX_READ_BYTES, type Engine, type ReadLimits, type ReadResult } from '../engine/index.js';
import { StreamError } from './errors.js';

/** The least a read is granted: below it, the budget counts as spent. */
export const MIN_READ_GRANT_BYTES = 64 * 1024;

/**
 * Bytes that reads may hold at once across the whole server — HTTP fetches, WebSocket fetches and
 * subscription pushes — so that many concurrent readers cannot together hold more memory than
 * this, whatever each one asks for. A read is granted what it asks for or what is left, whichever
 * is less, and holds it until its records have been turned into a reply; when less than
 * {@link MIN_READ_GRANT_BYTES} is left, it is refused (fetches answer RATE_LIMITED, pushes wait).
 * A grant bounds the read's `maxBytes`, which the engine may exceed by one record (it always
 * returns at least one), so the true peak is the budget plus one record per concurrent reader.
 */
export class ReadBudget {
  private used = 0;

  constructor(readonly limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < MIN_READ_GRANT_BYTES) {
      throw new RangeError(`the read budget must be at least ${MIN_READ_GRANT_BYTES} bytes, got ${limitBytes}`);
    }
  }

  /** Bytes granted and not yet released. */
  get inUse(): number {
    return this.used;
  }

  /** Grants up to `wanted` bytes; 0 when the budget is spent. Release what was granted. */
  tryAcquire(wanted: number): number {
    const free = this.limitBytes - this.used;
    if (free < Math.min(MIN_READ_GRANT_BYTES, wanted)) return 0;
    const grant = Math.min(wanted, free);
    this.used += grant;
    return grant;
  }

  /**
   * Grants all of `wanted` or nothing, and only while the budget stays at most half spent: for
   * reads that are worth doing but that no one waits for yet (a subscription reading ahead), so
   * they never make a read someone is waiting for wait.
   */
  tryAcquireSpare(wanted: number): number {
    if (this.used + wanted > this.limitBytes / 2) return 0;
    this.used += wanted;
    return wanted;
  }

  release(grant: number): void {
    this.used = Math.max(0, this.used - grant);
  }
}

/**
 * One engine read under the budget (none: unbounded), turned into `T` by `use` before the grant
 * is released. Refused with a retriable RATE_LIMITED when the budget is spent.
 */
export async function budgetedRead<T>(
  engine: Engine,
  budget: ReadBudget | undefined,
  read: { readonly topic: string; readonly partition: number; readonly offset: number; readonly limits: ReadLimits },
  use: (result: ReadResult) => T,
): Promise<T> {
  if (budget === undefined) return use(await engine.read(read.topic, read.partition, read.offset, read.limits));
  const grant = budget.tryAcquire(read.limits.maxBytes ?? DEFAULT_MAX_READ_BYTES);
  if (grant === 0) throw new StreamError('RATE_LIMITED', 'the server is serving as many reads as its memory allows; retry shortly');
  try {
    return use(await engine.read(read.topic, read.partition, read.offset, { ...read.limits, maxBytes: grant }));
  } finally {
    budget.release(grant);
  }
}
