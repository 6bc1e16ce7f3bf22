/**
 * The JetStream engine on a 3-node JetStream cluster (issue #7): an R3 topic under a steady
 * idempotent produce load while the partition's stream leader is SIGKILLed and later restarted
 * with its store. Every acknowledged record must then be in the partition exactly once, in
 * order, at the offset its append reported, with contiguous offsets.
 *
 * The test starts its own cluster (test/helpers/nats-cluster.ts) and needs only the nats-server
 * binary; it does not use the shared server on 4222.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { BrookError, type AppendResult, type ProduceRecord } from '../../src/engine/index.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { cleanup, requireNatsServer, setup, type NatsCluster } from '../helpers/nats-cluster.js';

// Skips loudly without nats-server (and fails under CI=true) before any test is collected.
const haveNatsServer = requireNatsServer();

const TOPIC = 'load';
const BATCH = 10;
/** The load's pace: at most one batch started per this many ms (2,500 records/s). */
const BATCH_EVERY_MS = 4;
/** Upper bound of the load, whatever the phases do (40 s at the pace above). */
const MAX_BATCHES = 10_000;
/** A batch still unacknowledged after retrying this long fails the test. */
const RETRY_FOR_MS = 25_000;
const RETRY_PAUSE_MS = 100;
const CONNECTION_NAME = 'brook-cluster-test';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One idempotent producer appending `BATCH` records at a time to partition 0, one batch after
 * the other. A failed append is retried with the same producer sequence until it is
 * acknowledged, so every batch it starts ends acknowledged, and the partition must hold exactly
 * what it records in `acked`.
 */
class SteadyProducer {
  /** Each acknowledged record's value and the offset its append reported, in append order. */
  readonly acked: Array<{ readonly value: string; readonly offset: number }> = [];
  batches = 0;
  /** Failed attempts that were retried. */
  retries = 0;
  /** Acknowledgements answered as duplicates of an earlier, unacknowledged attempt. */
  duplicates = 0;
  /** Longest time from a batch's first attempt to its acknowledgement (reported, not asserted). */
  longestWaitMs = 0;
  readonly errors = new Map<string, number>();
  private stopped = false;
  private readonly producerId = `p-${randomBytes(4).toString('hex')}`;

  constructor(private readonly engine: JetStreamEngine) {}

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    const start = Date.now();
    while (!this.stopped && this.batches < MAX_BATCHES) {
      const due = start + this.batches * BATCH_EVERY_MS - Date.now();
      if (due > 0) await sleep(due);
      const sequence = this.batches * BATCH;
      const records: ProduceRecord[] = Array.from({ length: BATCH }, (_, i) => ({ value: Buffer.from(`r${sequence + i}`) }));
      const result = await this.appendUntilAcked(records, sequence);
      if (result.duplicate) this.duplicates++;
      records.forEach((r, i) => this.acked.push({ value: Buffer.from(r.value!).toString(), offset: result.baseOffset + i }));
      this.batches++;
    }
  }

  private async appendUntilAcked(records: ProduceRecord[], sequence: number): Promise<AppendResult> {
    const first = Date.now();
    const deadline = first + RETRY_FOR_MS;
    for (;;) {
      try {
        const result = await this.engine.append(TOPIC, 0, records, { producer: { id: this.producerId, sequence } });
        this.longestWaitMs = Math.max(this.longestWaitMs, Date.now() - first);
        return result;
      } catch (err) {
        // Only what a failover can cause is retried; anything else is a bug to report as is.
        if (!(err instanceof BrookError) || err.code !== 'STORAGE_ERROR' || Date.now() > deadline) throw err;
        const kind = `${err.code}: ${err.message.replace(/\d+/g, 'N')}`;
        this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
        this.retries++;
        await sleep(RETRY_PAUSE_MS);
      }
    }
  }
}

/** Waits until at least `minMs` have passed and `batches` more batches were acknowledged. */
async function loadFor(producer: SteadyProducer, minMs: number, batches: number, what: string, running: Promise<void>): Promise<void> {
  const start = Date.now();
  const target = producer.batches + batches;
  const deadline = start + RETRY_FOR_MS;
  let failed: unknown = null;
  running.catch((err: unknown) => (failed = err));
  while (Date.now() - start < minMs || producer.batches < target) {
    if (failed !== null) throw failed;
    if (Date.now() > deadline) {
      const done = producer.batches - (target - batches);
      throw new Error(`${what}: only ${done} of ${batches} batches acknowledged in ${RETRY_FOR_MS} ms`);
    }
    if (producer.batches >= MAX_BATCHES) throw new Error(`${what}: the load reached MAX_BATCHES before the phase ended`);
    await sleep(50);
  }
}

describe.runIf(haveNatsServer)('JetStream engine on a 3-node cluster', () => {
  let cluster: NatsCluster | undefined;
  let engine: JetStreamEngine | undefined;

  afterAll(async () => {
    try {
      // Bounded: the servers are killed below whether or not the engine closes cleanly.
      await Promise.race([engine?.close(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    } finally {
      await cleanup(cluster);
    }
  });

  it('keeps every acknowledged record exactly once and in order while the stream leader is killed and restarted', async () => {
    const started = Date.now();
    cluster = await setup({ nodes: 3 });
    await cluster.waitForJetStream({ replicas: 3 });

    const prefix = `BC${randomBytes(4).toString('hex')}`;
    engine = new JetStreamEngine({
      servers: cluster.urls,
      prefix,
      name: CONNECTION_NAME,
      replicas: 3,
      // Fail over in seconds rather than the default 10 s: a PubAck lost with a killed server
      // or a leader that died is retried with the same producer sequence.
      ackTimeoutMs: 2_000,
      requestTimeoutMs: 3_000,
      logger: pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' }),
    });
    await engine.open();
    await engine.createTopic(TOPIC, { partitions: 1 });
    // The documented mapping: partition 0 of topic "load" is stream <prefix>_load_0.
    const stream = `${prefix}_${TOPIC}_0`;
    // The worst case: the node that dies both leads the stream and holds the engine's connection,
    // so the engine loses its PubAcks and the stream its leader at once.
    const engineNode = await cluster.nodeOfClient(CONNECTION_NAME);
    expect(engineNode).toBeGreaterThanOrEqual(0);
    const engineOnLeader = await cluster.moveStreamLeader(stream, engineNode);
    const victim = await cluster.streamLeader(stream);

    const producer = new SteadyProducer(engine);
    const running = producer.run();
    try {
      await loadFor(producer, 1_500, 50, 'before the kill', running);
      const killedAt = producer.batches;
      await cluster.kill(victim);
      await loadFor(producer, 4_000, 50, 'with the stream leader killed', running);
      const restartedAt = producer.batches;
      await cluster.start(victim);
      await loadFor(producer, 3_000, 50, 'after the restart', running);
      producer.stop();
      await running;
      expect(restartedAt - killedAt).toBeGreaterThan(0);
    } finally {
      producer.stop();
      await running.catch(() => undefined); // the failure is the one thrown above
    }

    // The restarted node has caught up; the leader's last sequence is every record we appended.
    const lastSeq = await cluster.waitForStreamCurrent(stream);
    const stored: Array<{ value: string; offset: number }> = [];
    for (let offset = 0; ; ) {
      const batch = await engine.read(TOPIC, 0, offset, { maxRecords: 1_000 });
      stored.push(...batch.records.map((r) => ({ value: Buffer.from(r.value!).toString(), offset: r.offset })));
      if (batch.records.length === 0 || batch.nextOffset >= batch.highWatermark) break;
      offset = batch.nextOffset;
    }

    const total = producer.batches * BATCH;
    expect(producer.acked.length).toBe(total);
    expect(lastSeq).toBe(total);
    expect(stored.map((r) => r.offset)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(stored).toEqual(producer.acked);
    expect(new Set(stored.map((r) => r.value)).size).toBe(total);

    const errors = [...producer.errors].map(([kind, n]) => `${n}× ${kind}`).join('; ');
    process.stderr.write(
      `jetstream-cluster: killed the stream leader${engineOnLeader ? ' and the engine\'s server' : ' (the engine was on another node)'}; ` +
        `${total} records acked in ${producer.batches} batches, ${producer.retries} retried attempts, ` +
        `${producer.duplicates} duplicate acks, longest wait for an ack ${producer.longestWaitMs} ms, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s in all${errors ? ` [${errors}]` : ''}\n`,
    );
  });
});
