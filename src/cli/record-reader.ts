import { ApiError, type HttpClient, seg } from './http-client.js';

export interface ReadOptions {
  /** Only this partition; without it, every partition of the topic. */
  readonly partition?: number | undefined;
  /** Start at the earliest offset instead of the latest (where no group offset is committed). @defaultValue false */
  readonly fromBeginning?: boolean | undefined;
  /** Stop after this many records. @defaultValue unbounded */
  readonly max?: number | undefined;
  /** Start from this group's committed offsets and commit after each emitted batch. */
  readonly group?: string | undefined;
  /**
   * Keep long-polling for new records; false stops each partition once it has caught up with
   * the high watermark it last saw. Following is the default because `brook consume` always
   * followed (scripts and the README rely on it); `--no-follow` opts out. @defaultValue true
   */
  readonly follow?: boolean | undefined;
}

/** A record as the HTTP API returns it, with its partition. */
export interface TopicRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: unknown;
  readonly headers: Record<string, string>;
  readonly timestamp: number;
}

interface FetchBody {
  readonly records: Omit<TopicRecord, 'partition'>[];
  readonly next_offset: number;
  readonly high_watermark: number;
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
 * Reads a topic's records (every partition, or one) and hands each to `emit`, one at a time,
 * until `max` records were emitted, `signal` aborts, or (without `follow`) every partition has
 * caught up. Partitions are polled in parallel; order holds within a partition only. With a
 * group, each partition starts at the group's committed offset, and the offset after the last
 * emitted record is committed after each emitted batch (Kafka's convention: the next offset to
 * read). The group's offsets are used, not its membership: two readers with one group both read
 * every partition.
 */
export async function readTopic(
  client: HttpClient,
  topic: string,
  options: ReadOptions,
  emit: (record: TopicRecord) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
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
  const follow = options.follow ?? true;
  const waitMs = follow ? POLL_WAIT_MS : 0;

  // Stops every partition's poll once enough records were emitted, or on the caller's signal.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let remaining = options.max ?? Number.POSITIVE_INFINITY;

  const readPartition = async (partition: number): Promise<void> => {
    let offset: number | 'earliest' | 'latest' = committed.get(partition) ?? (options.fromBeginning ? 'earliest' : 'latest');
    while (!stop.signal.aborted && remaining > 0) {
      const max = Math.min(FETCH_MAX, remaining);
      let body: FetchBody;
      try {
        body = await client.get<FetchBody>(
          `${topicPath}/partitions/${partition}/records?offset=${offset}&max=${max}&wait_ms=${waitMs}`,
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
      // Reserved synchronously, so partitions polling in parallel never emit more than `max`.
      const take = Math.min(body.records.length, remaining);
      if (take === 0 && body.records.length > 0) return; // another partition reached max meanwhile
      remaining -= take;
      for (let i = 0; i < take; i++) await emit({ partition, ...body.records[i]! });
      offset = take === body.records.length ? body.next_offset : body.records[take - 1]!.offset + 1;
      if (options.group !== undefined && take > 0) {
        // Not tied to the stop signal: a commit that started completes.
        await client.post(`/v1/groups/${seg(options.group)}/offsets`, { offsets: [{ topic, partition, offset }] });
      }
      if (remaining <= 0) stop.abort();
      else if (!follow && offset >= body.high_watermark) return;
    }
  };

  try {
    const results = await Promise.allSettled(
      partitions.map((p) =>
        readPartition(p).catch((err: unknown) => {
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
