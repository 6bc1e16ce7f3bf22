import { build, type Histogram } from 'hdr-histogram-js';

/** One log workload: the same for every system in a run. */
export interface Workload {
  readonly topic: string;
  readonly records: number;
  /** Bytes of each record's value (the payload every system stores; no key, no headers). */
  readonly recordBytes: number;
  readonly partitions: number;
  /** Records per append / publish batch / pipeline / read request. */
  readonly batch: number;
  /** Publish batches in flight at once, across all partitions. */
  readonly window: number;
}

/**
 * A batch of records for one partition. Each value is `recordBytes` of ASCII: the record's
 * partition-local sequence as 10 digits, then filler. ASCII so the same payload travels as a
 * JSON string over HTTP (`text` is the string whose JSON encoding is exactly `recordBytes`).
 */
export interface Batch {
  readonly partition: number;
  /** Partition-local sequence of the first record. */
  readonly firstSeq: number;
  readonly values: readonly Uint8Array[];
  /** The values as strings of `recordBytes - 2` chars, for JSON bodies (lazily built). */
  texts(): readonly string[];
}

const SEQ_DIGITS = 10;

/**
 * The byte bound Brook reads are given (in-process and over HTTP): far above a batch, so the
 * record count bounds each read, as it does for the competitors.
 */
export const READ_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Writes `n` as SEQ_DIGITS zero-padded ASCII digits at `at`, as `String(n).padStart(...)` would,
 * without the two strings per record: at 1 KB records the generator's garbage was two fifths of
 * the bench process's, time its collector took from the system under test.
 */
function writeDigits(block: Buffer, at: number, n: number): void {
  for (let d = SEQ_DIGITS - 1; d >= 0; d--) {
    block[at + d] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
}

/** Builds batches without holding the whole data set: one buffer per batch. */
export class PayloadFactory {
  private readonly filler: Buffer;
  private readonly fillerText: string;

  constructor(private readonly recordBytes: number) {
    if (recordBytes < SEQ_DIGITS + 2) throw new Error(`record size must be at least ${SEQ_DIGITS + 2} bytes`);
    this.filler = Buffer.alloc(recordBytes, 'abcdefghijklmnopqrstuvwxyz0123456789');
    this.fillerText = this.filler.toString('latin1', 0, recordBytes - 2 - SEQ_DIGITS);
  }

  batch(partition: number, firstSeq: number, count: number): Batch {
    const size = this.recordBytes;
    const block = Buffer.allocUnsafe(size * count);
    const values: Uint8Array[] = new Array<Uint8Array>(count);
    for (let i = 0; i < count; i++) {
      const at = i * size;
      this.filler.copy(block, at);
      writeDigits(block, at, firstSeq + i);
      values[i] = block.subarray(at, at + size);
    }
    let texts: string[] | null = null;
    const fillerText = this.fillerText;
    return {
      partition,
      firstSeq,
      values,
      texts() {
        texts ??= Array.from({ length: count }, (_, i) => String(firstSeq + i).padStart(SEQ_DIGITS, '0') + fillerText);
        return texts;
      },
    };
  }
}

/**
 * The publish plan: batch i goes to partition i % partitions, so partitions fill evenly and in
 * step; only the very last batch may be short.
 */
export function planBatches(w: Workload): { count: number; at(i: number): { partition: number; firstSeq: number; size: number } } {
  const count = Math.ceil(w.records / w.batch);
  return {
    count,
    at(i) {
      return {
        partition: i % w.partitions,
        firstSeq: Math.floor(i / w.partitions) * w.batch,
        size: Math.min(w.batch, w.records - i * w.batch),
      };
    },
  };
}

/** Records each partition holds once the plan is published. */
export function expectedPerPartition(w: Workload): number[] {
  const plan = planBatches(w);
  const counts = new Array<number>(w.partitions).fill(0);
  for (let i = 0; i < plan.count; i++) {
    const b = plan.at(i);
    counts[b.partition] = (counts[b.partition] ?? 0) + b.size;
  }
  return counts;
}

export class PhaseTimeoutError extends Error {
  override readonly name = 'PhaseTimeoutError';
  readonly code = 'PHASE_TIMEOUT';
}

/** Microsecond latencies in bounded memory. */
export class Latency {
  private readonly histogram: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });

  recordMs(ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  /** p50 / p99 / p99.9 / max in milliseconds. */
  summary(): LatencySummary {
    const h = this.histogram;
    return {
      count: h.totalCount,
      p50Ms: h.getValueAtPercentile(50) / 1000,
      p99Ms: h.getValueAtPercentile(99) / 1000,
      p999Ms: h.getValueAtPercentile(99.9) / 1000,
      maxMs: h.maxValue / 1000,
    };
  }
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

/**
 * `work`, or a PhaseTimeoutError once `deadline` (performance.now()) has passed, whichever comes
 * first: a task that never settles (a lost acknowledgement, a stalled consumer) cannot hang the
 * run. What `work` still does after the deadline is left to the system's `stop`.
 */
export async function beforeDeadline<T>(work: Promise<T>, deadline: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PhaseTimeoutError(what())), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `task(0..count-1)` with at most `window` tasks in flight, in order of index; records each
 * task's latency. The first failure stops new tasks and is rethrown once in-flight ones settle.
 * Past `timeoutMs` it throws a PhaseTimeoutError, even while tasks are still in flight.
 */
export async function runWindowed(
  count: number,
  window: number,
  task: (i: number) => Promise<void>,
  options: { readonly timeoutMs: number; readonly latency?: Latency },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  let next = 0;
  let failure: unknown = null;
  const lane = async (): Promise<void> => {
    while (failure === null && next < count) {
      if (performance.now() > deadline) throw new PhaseTimeoutError(`not finished after ${options.timeoutMs} ms (${next}/${count} batches)`);
      const i = next++;
      const started = performance.now();
      await task(i);
      options.latency?.recordMs(performance.now() - started);
    }
  };
  const lanes = Array.from({ length: Math.min(window, count) }, () =>
    lane().catch((err: unknown) => {
      failure ??= err;
    }),
  );
  try {
    await beforeDeadline(Promise.all(lanes), deadline, () => `not finished after ${options.timeoutMs} ms (${next}/${count} batches started)`);
  } catch (err) {
    failure ??= err; // stops the lanes from starting more
  }
  if (failure !== null) throw failure;
}

/** What one partition reader hands back per request. */
export interface ReadChunk {
  readonly count: number;
  /** Sum of value lengths. */
  readonly bytes: number;
}

/** A sequential reader of one partition from its start. */
export interface PartitionReader {
  /** Up to `max` next records; may return fewer (size limits) but never skips. */
  next(max: number): Promise<ReadChunk>;
  close(): Promise<void>;
}

/**
 * Reads `expected` records from a partition, one request of up to `batch` at a time, and checks
 * the count and byte total. Throws on a stall (three empty answers in a row) or the deadline.
 */
export async function drainPartition(
  reader: PartitionReader,
  expected: number,
  recordBytes: number,
  batch: number,
  deadline: number,
): Promise<void> {
  let count = 0;
  let bytes = 0;
  let empty = 0;
  try {
    while (count < expected) {
      if (performance.now() > deadline) throw new PhaseTimeoutError(`read not finished by the deadline (${count}/${expected})`);
      const chunk = await beforeDeadline(reader.next(Math.min(batch, expected - count)), deadline, () => `read not finished by the deadline (${count}/${expected})`);
      if (chunk.count === 0) {
        if (++empty >= 3) throw new Error(`read stalled at ${count} of ${expected} records`);
        continue;
      }
      empty = 0;
      count += chunk.count;
      bytes += chunk.bytes;
    }
  } finally {
    await reader.close();
  }
  if (count !== expected) throw new Error(`read ${count} records, expected ${expected}`);
  if (bytes !== expected * recordBytes) throw new Error(`read ${bytes} value bytes, expected ${expected * recordBytes}`);
}
