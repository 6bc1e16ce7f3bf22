import type { BrookClient, Consumer, Producer } from '../../src/client/index.js';
import type { LogSystem } from '../lib/log-system.js';
import { beforeDeadline, type Batch, type PartitionReader } from '../lib/workload.js';

const CLOSE_TIMEOUT_MS = 10_000;
import { BrookProcess } from './process.js';
import { ClientErrors, sdkClient } from './sdk-client.js';

/**
 * `maxInflight` for each of `producers` producers sharing one connection: as many batches as the
 * server remembers per idempotent producer (`producer_batches`, 8), but together below the
 * server's `max_inflight_produce`. At that bound the
 * server sends `slow_down` (docs/protocol.md), which pauses every producer of the connection for
 * 50 ms; an SDK of this checkout can also stay paused for good after one (see bench/README.md).
 */
export function producerWindow(client: BrookClient, producers: number): number {
  const limit = client.limits?.maxInflightProduce ?? 32;
  const remembered = client.limits?.producerBatches ?? 5;
  return Math.max(1, Math.min(remembered, Math.floor((limit - 1) / producers)));
}

/**
 * Sends a workload batch through a producer of its partition with one `sendMany()` (the SDK's
 * call for many records under one promise). Checks the acknowledged offsets are contiguous and
 * returns the first.
 */
export async function sendBatch(producer: Producer<string | Uint8Array>, batch: Batch, raw = false): Promise<number> {
  // Raw bytes over the binary protocol, else the JSON strings of the same payload.
  const texts: readonly (string | Uint8Array)[] = raw ? batch.values : batch.texts();
  const acked = await producer.sendMany(texts.map((value) => ({ value })));
  const first = acked[0];
  const last = acked.at(-1);
  // One producer per partition keeps a batch's sends together: their offsets are contiguous.
  if (first === undefined || last === undefined || first.partition !== batch.partition || last.offset - first.offset !== acked.length - 1) {
    throw new Error(`${producer.topic}/${batch.partition}: acknowledged offsets ${first?.offset}..${last?.offset} for ${texts.length} records`);
  }
  return first.offset;
}

/**
 * `BROOK_BENCH_SDK_CONSUMER=stored`: the binary consumers ask for stored batches
 * (ConsumerOptions.storedBatches), with a window that fits whole 1,000-record batches of 100 B.
 */
const STORED_CONSUMER = process.env['BROOK_BENCH_SDK_CONSUMER'] === 'stored';
const STORED_CONSUMER_OPTIONS = { storedBatches: true, credits: { records: 5_000, bytes: 2 * 1024 * 1024 } } as const;

/**
 * The plain consumers' credit window: two of the producers' batches, in records, and bytes to
 * spare for two 1 MiB batches (docs/client.md: a window of at least twice the producers' batch
 * keeps the server pushing one batch while the application takes the other; with the SDK's
 * default of 1,000 records a 1,000-record batch fills it, and each push waits for the credit
 * of the last). Measured on 1 KB × 1: 510–560 k rec/s with the default window, 624–656 k with this.
 */
function consumerCredits(batch: number): { records: number; bytes: number } {
  return { records: 2 * batch, bytes: 4 * 1024 * 1024 };
}

/**
 * Brook's SDK (`brook/client`) in the bench process against the Brook server as a child process
 * (`bin/brook.js start`, embedded engine, default durability), over one loopback WebSocket.
 *
 * - Publish: one idempotent producer per partition (`batchSize` = the workload's batch, default
 *   linger, `maxInflight` from `producerWindow`); a workload batch is one `sendMany()`, so the
 *   harness's window bounds the records outstanding. With a partition, on `brook.v1.bin`, its
 *   batches go as stored-layout frames (kind 0x05).
 * - Read: one plain consumer per partition from `earliest`, taken out of it with `nextBatch()`;
 *   its credit window holds two producer batches (`consumerCredits`). Offsets are checked to be
 *   contiguous.
 *
 * Protocol `binary` (`brook-sdk`, the SDK's default): values are the workload's raw bytes
 * (`Uint8Array`), and the consumer reads `valueBytes`, as the competitors read raw bytes.
 * Protocol `json` (`brook-sdk-json`): values are strings whose JSON encoding is exactly the
 * record size, as over HTTP, and the consumer reads the decoded `value`. Topics are created and
 * deleted over HTTP (the protocol has no admin frames).
 */
export class BrookSdk implements LogSystem {
  readonly name: 'brook-sdk' | 'brook-sdk-json';
  readonly label: string;
  readonly durability = 'send() resolves after the server\'s group-committed O_DSYNC write (as fdatasync; topic default durability "fsync").';
  readonly errors = new ClientErrors();

  private process: BrookProcess | null = null;
  private client: BrookClient | null = null;
  private readonly producers = new Map<string, Producer<string | Uint8Array>>();
  private readonly partitionCounts = new Map<string, number>();

  constructor(
    private readonly root: string,
    private readonly serverBin: string,
    private readonly batch: number,
    private readonly protocol: 'binary' | 'json' = 'binary',
  ) {
    this.name = protocol === 'binary' ? 'brook-sdk' : 'brook-sdk-json';
    this.label = protocol === 'binary' ? (STORED_CONSUMER ? 'Brook SDK (stored batches)' : 'Brook SDK') : 'Brook SDK (JSON)';
  }

  async start(): Promise<void> {
    this.process = await BrookProcess.start(this.root, this.serverBin, 'sdk');
    // Reconnecting would hide a dropped connection: here it must fail the phase instead.
    this.client = sdkClient(this.process.url, this.errors, { reconnect: false, protocol: this.protocol });
    await this.client.connect();
  }

  private open(): { process: BrookProcess; client: BrookClient } {
    if (this.process === null || this.client === null) throw new Error('brook-sdk is not started');
    return { process: this.process, client: this.client };
  }

  async createTopic(topic: string, partitions: number): Promise<void> {
    await this.open().process.createTopic(topic, partitions);
    this.partitionCounts.set(topic, partitions);
  }

  async publish(topic: string, batch: Batch): Promise<void> {
    const key = `${topic}/${batch.partition}`;
    let producer = this.producers.get(key);
    if (producer === undefined) {
      const client = this.open().client;
      const maxInflight = producerWindow(client, this.partitionCounts.get(topic) ?? 1);
      producer = client.producer<string | Uint8Array>({ topic, partition: batch.partition, batchSize: this.batch, maxInflight });
      this.producers.set(key, producer);
    }
    await sendBatch(producer, batch, this.protocol === 'binary');
  }

  async reader(topic: string, partition: number): Promise<PartitionReader> {
    const stored = STORED_CONSUMER && this.protocol === 'binary' ? STORED_CONSUMER_OPTIONS : { credits: consumerCredits(this.batch) };
    const consumer: Consumer<string> = this.open().client.consumer<string>({ topic, partition, from: 'earliest', ...stored });
    const raw = this.protocol === 'binary';
    let offset = 0;
    return {
      async next(max) {
        let bytes = 0;
        let count = 0;
        // nextBatch: the SDK's call for many records under one promise.
        const records = await consumer.nextBatch(max);
        if (records.length === 0) throw new Error(`${topic}/${partition}: the consumer ended at offset ${offset}`);
        for (const record of records) {
          if (record.offset !== offset) throw new Error(`${topic}/${partition}: offset ${record.offset} where ${offset} was expected`);
          if (raw) {
            const value = record.valueBytes;
            if (value === null) throw new Error(`${topic}/${partition}@${offset}: value is null`);
            bytes += value.length;
          } else {
            if (typeof record.value !== 'string') throw new Error(`${topic}/${partition}@${offset}: value is not the string produced`);
            // The value went in as a JSON string of recordBytes - 2 chars: its encoding is the payload.
            bytes += record.value.length + 2;
          }
          offset++;
          count++;
        }
        return { count, bytes };
      },
      async close() {
        await consumer.close();
      },
    };
  }

  async deleteTopic(topic: string): Promise<void> {
    for (const [key, producer] of this.producers) {
      if (producer.topic !== topic) continue;
      this.producers.delete(key);
      // Bounded: after a failed phase sends may still be pending; stop() fails whatever is left.
      await beforeDeadline(producer.close(), performance.now() + CLOSE_TIMEOUT_MS, () => `closing the producer of ${key} took over ${CLOSE_TIMEOUT_MS} ms`);
    }
    await this.open().process.deleteTopic(topic);
    this.partitionCounts.delete(topic);
  }

  async stop(): Promise<void> {
    const client = this.client;
    const process = this.process;
    this.client = null;
    this.process = null;
    this.producers.clear();
    try {
      await client?.close();
    } finally {
      await process?.stop();
    }
  }
}
