import type { Writable } from 'node:stream';
import { ApiError, HttpClient, seg } from '../http-client.js';
import { writeLine } from '../output.js';

export interface ConsumeOptions {
  readonly url: string;
  readonly partition?: number | undefined;
  readonly fromBeginning?: boolean | undefined;
  readonly max?: number | undefined;
  readonly group?: string | undefined;
}

interface FetchedRecord {
  readonly offset: number;
  readonly key: string | null;
  readonly value: unknown;
  readonly headers: Record<string, string>;
  readonly timestamp: number;
}
interface FetchBody {
  readonly records: FetchedRecord[];
  readonly next_offset: number;
}
interface TopicBody {
  readonly partitions: { readonly partition: number }[];
}
interface OffsetsBody {
  readonly offsets: { readonly partition: number; readonly offset: number }[];
}

const POLL_WAIT_MS = 5_000;
const FETCH_MAX = 500;

/**
 * Prints one JSON line per record, from every partition of the topic (or one), following new
 * records with long polls until `max` records were printed or `signal` aborts. With a group,
 * each partition starts at the group's committed offset, and the offset after the last printed
 * record is committed after each printed batch (Kafka's convention: the next offset to read).
 * The group's offsets are used, not its membership: two consumers with one group both read
 * every partition.
 */
export async function consume(topic: string, options: ConsumeOptions, out: Writable, signal: AbortSignal): Promise<void> {
  const client = new HttpClient(options.url);
  const topicPath = `/v1/topics/${seg(topic)}`;
  const described = await client.get<TopicBody>(topicPath, signal);
  let partitions = described.partitions.map((p) => p.partition);
  if (options.partition !== undefined) {
    if (!partitions.includes(options.partition)) {
      throw new ApiError('PARTITION_NOT_FOUND', 404, `topic "${topic}" has no partition ${options.partition}`);
    }
    partitions = [options.partition];
  }
  const committed = new Map<number, number>();
  if (options.group !== undefined) {
    const { offsets } = await client.get<OffsetsBody>(`/v1/groups/${seg(options.group)}/offsets?topic=${seg(topic)}`, signal);
    for (const o of offsets) committed.set(o.partition, o.offset);
  }

  // Stops every partition's poll once enough records were printed, or on the caller's signal.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let remaining = options.max ?? Number.POSITIVE_INFINITY;

  const follow = async (partition: number): Promise<void> => {
    let offset: number | 'earliest' | 'latest' = committed.get(partition) ?? (options.fromBeginning ? 'earliest' : 'latest');
    while (!stop.signal.aborted && remaining > 0) {
      const max = Math.min(FETCH_MAX, remaining);
      let body: FetchBody;
      try {
        body = await client.get<FetchBody>(
          `${topicPath}/partitions/${partition}/records?offset=${offset}&max=${max}&wait_ms=${POLL_WAIT_MS}`,
          stop.signal,
        );
      } catch (err) {
        if (stop.signal.aborted) return;
        if (err instanceof ApiError && err.code === 'OFFSET_OUT_OF_RANGE') {
          process.stderr.write(`partition ${partition}: offset ${offset} is gone (retention); continuing from the earliest\n`);
          offset = 'earliest';
          continue;
        }
        throw err;
      }
      // Reserved synchronously, so partitions polling in parallel never print more than `max`.
      const take = Math.min(body.records.length, remaining);
      if (take === 0 && body.records.length > 0) return; // another partition reached max meanwhile
      remaining -= take;
      for (let i = 0; i < take; i++) {
        const r = body.records[i]!;
        await writeLine(
          out,
          JSON.stringify({ partition, offset: r.offset, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp }),
        );
      }
      offset = take === body.records.length ? body.next_offset : body.records[take - 1]!.offset + 1;
      if (options.group !== undefined && take > 0) {
        // Not tied to the stop signal: a commit that started completes.
        await client.post(`/v1/groups/${seg(options.group)}/offsets`, { offsets: [{ topic, partition, offset }] });
      }
      if (remaining <= 0) stop.abort();
    }
  };

  try {
    const results = await Promise.allSettled(
      partitions.map((p) =>
        follow(p).catch((err: unknown) => {
          stop.abort(); // one partition failing ends the others too
          throw err;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
