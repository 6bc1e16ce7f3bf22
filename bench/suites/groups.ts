import type { BrookClient, Consumer, Producer } from '../../src/client/index.js';
import type { BenchOptions } from '../lib/args.js';
import { sleep } from '../lib/processes.js';
import { int, ms } from '../lib/report.js';
import { beforeDeadline, PayloadFactory, planBatches, runWindowed, type Workload } from '../lib/workload.js';
import { BrookProcess } from '../brook/process.js';
import { producerWindow, sendBatch } from '../brook/sdk.js';
import { BreakableSocket, ClientErrors, sdkClient } from '../brook/sdk-client.js';

const TOPIC = 'groups';
const GROUP = 'bench';
const PARTITIONS = 8;
const MEMBERS = 4;
const RECORD_BYTES = 100;
/** Records per second produced while members are killed, so records are in flight across each rebalance. */
const TRICKLE_RATE = 2000;
const TRICKLE_TICK_MS = 10;
/** Steady seconds before each break and after the last. */
const STEADY_MS = 1000;
/** How often ownership is checked while waiting for a rebalance. */
const POLL_MS = 2;
/** How long the members get, after the last record was produced, to have consumed everything. */
const CATCH_UP_MS = 30_000;

export interface RebalanceResult {
  /** `kill`: socket destroyed (the server sees the connection drop); `freeze`: socket silent. */
  readonly how: 'kill' | 'freeze';
  /** Partitions the broken member owned. */
  readonly partitionsLost: number;
  /** From the break until the remaining members owned all partitions between them. */
  readonly ms: number;
}

export interface GroupsResult {
  readonly records: number;
  readonly recordBytes: number;
  readonly partitions: number;
  readonly members: number;
  readonly sessionTimeoutMs: number;
  /** The server's: a third of the session timeout. */
  readonly heartbeatIntervalMs: number;
  readonly preload: { readonly seconds: number; readonly recPerSec: number };
  readonly consume: {
    readonly seconds: number;
    /**
     * Preloaded records ÷ seconds from the settled members starting to read to the last
     * preloaded offset consumed (each member had up to its credit window buffered already).
     */
    readonly recPerSec: number;
    /** From creating the members until each owned its share (2 of 8); reading starts then. */
    readonly settledMs: number;
    /** Records each member consumed during the phase. */
    readonly perMember: readonly number[];
  };
  readonly rebalances: RebalanceResult[];
  readonly verification: {
    /** Offsets produced in all (preload + records produced across the breaks). */
    readonly offsets: number;
    readonly consumedAtLeastOnce: number;
    readonly missing: number;
    /** `partition@offset` of the first few missing. */
    readonly firstMissing: readonly string[];
    /** Records consumed more than once (at-least-once redelivery after a break). */
    readonly duplicates: number;
    /** Preloaded records whose value did not carry their offset. */
    readonly wrongValues: number;
  };
  /** SDK errors no caller waited for, other than those of the broken members' connections. */
  readonly clientErrors: { readonly count: number; readonly first: readonly string[] };
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Which offsets of each partition were consumed, in a bitmap per partition that grows as needed. */
class Coverage {
  private readonly bits: Uint8Array[];
  readonly counts: number[];
  duplicates = 0;

  constructor(initial: readonly number[]) {
    this.bits = initial.map((n) => new Uint8Array(Math.max(1024, n)));
    this.counts = initial.map(() => 0);
  }

  mark(partition: number, offset: number): void {
    let bits = this.bits[partition];
    if (bits === undefined) throw new Error(`record of partition ${partition}, which the topic does not have`);
    if (offset >= bits.length) {
      const grown = new Uint8Array(Math.max(offset + 1, bits.length * 2));
      grown.set(bits);
      this.bits[partition] = bits = grown;
    }
    if (bits[offset] === 1) {
      this.duplicates++;
      return;
    }
    bits[offset] = 1;
    this.counts[partition] = (this.counts[partition] ?? 0) + 1;
  }

  /** Offsets below `ends[p]` never consumed: how many, and the first few. */
  missing(ends: readonly number[]): { count: number; first: string[] } {
    let count = 0;
    const first: string[] = [];
    ends.forEach((end, p) => {
      const bits = this.bits[p]!;
      for (let offset = 0; offset < end; offset++) {
        if (bits[offset] === 1) continue;
        count++;
        if (first.length < 10) first.push(`${p}@${offset}`);
      }
    });
    return { count, first };
  }
}

interface Member {
  readonly index: number;
  readonly errors: ClientErrors;
  readonly socket: BreakableSocket;
  readonly client: BrookClient;
  readonly consumer: Consumer<string>;
  /** Only a live member's records count: a broken one's process is gone or hung. */
  state: 'live' | 'killed' | 'frozen';
  consumed: number;
  loop: Promise<void>;
}

/** Produces TRICKLE_RATE records/s round-robin over the partitions until stopped; remembers the end offsets acknowledged. */
class Trickle {
  private readonly producers: Producer<string>[];
  private readonly payloads = new PayloadFactory(RECORD_BYTES);
  private readonly sends = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  readonly ends: number[];
  readonly failures: string[] = [];

  constructor(client: BrookClient, ends: readonly number[]) {
    const maxInflight = producerWindow(client, ends.length);
    this.producers = ends.map((_, partition) => client.producer<string>({ topic: TOPIC, partition, lingerMs: 0, maxInflight }));
    this.ends = [...ends];
  }

  start(deadline: number): void {
    const perTick = Math.max(1, Math.round((TRICKLE_RATE * TRICKLE_TICK_MS) / 1000));
    this.timer = setInterval(() => {
      // Bounded in time as well as by stop(): the caller's phases have deadlines of their own.
      if (performance.now() > deadline) return this.halt();
      for (let i = 0; i < perTick; i++) {
        const seq = this.seq++;
        const partition = seq % this.producers.length;
        const text = this.payloads.batch(partition, seq, 1).texts()[0]!;
        const send: Promise<void> = this.producers[partition]!.send({ value: text }).then(
          ({ offset }) => {
            this.ends[partition] = Math.max(this.ends[partition] ?? 0, offset + 1);
          },
          (err: unknown) => {
            if (this.failures.length < 5) this.failures.push(errorText(err));
          },
        );
        this.sends.add(send);
        void send.finally(() => this.sends.delete(send));
      }
    }, TRICKLE_TICK_MS);
  }

  private halt(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops producing and waits (up to `timeoutMs`) for every send to settle. */
  async stop(timeoutMs: number): Promise<number> {
    this.halt();
    await beforeDeadline(Promise.allSettled([...this.sends]), performance.now() + timeoutMs, () => `${this.sends.size} sends still unacknowledged after ${timeoutMs} ms`);
    return this.seq;
  }
}

/** Waits until `done()` (checked every POLL_MS) and returns the time it took, or throws at the deadline. */
async function until(what: string, done: () => boolean, timeoutMs: number, since = performance.now()): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (done()) return performance.now() - since;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${int(timeoutMs)} ms`);
    await sleep(POLL_MS);
  }
}

/** The partitions the given members own now, or null when two of them claim the same one. */
function owned(members: readonly Member[]): Set<number> | null {
  const all = new Set<number>();
  for (const m of members) {
    for (const { partition } of m.consumer.assignment) {
      if (all.has(partition)) return null;
      all.add(partition);
    }
  }
  return all;
}

/**
 * Consumer groups through the SDK: MEMBERS members (one client and socket each, in the bench
 * process) of one group on a PARTITIONS-partition topic preloaded with `records` records.
 *
 * 1. Consume: once the group settled (each member owns its share), from the members starting to
 *    read until every preloaded offset has been consumed.
 * 2. With records still being produced (TRICKLE_RATE), a member is killed — its socket destroyed,
 *    no leave — and the time until the others own every partition is measured; then another is
 *    frozen (its socket stays open but silent), which only the session timeout can detect.
 * 3. Verification: every offset produced was consumed at least once by a member while it was live.
 */
export async function runGroups(options: BenchOptions): Promise<GroupsResult> {
  const errors = new ClientErrors();
  const brook = await BrookProcess.start(options.dir, options.serverBin, 'groups');
  const members: Member[] = [];
  let producerClient: BrookClient | null = null;
  let trickle: Trickle | null = null;
  try {
    await brook.createTopic(TOPIC, PARTITIONS);
    producerClient = sdkClient(brook.url, errors, { reconnect: false });
    const client = producerClient;
    await client.connect();

    // ── preload ────────────────────────────────────────────────────────────────────────────
    const w: Workload = { topic: TOPIC, records: options.records, recordBytes: RECORD_BYTES, partitions: PARTITIONS, batch: options.batch, window: options.window };
    progress(`groups: preloading ${int(w.records)} × ${RECORD_BYTES} B on ${PARTITIONS} partitions`);
    const plan = planBatches(w);
    const payloads = new PayloadFactory(RECORD_BYTES);
    const preloadProducers = Array.from({ length: PARTITIONS }, (_, partition) =>
      client.producer<string | Uint8Array>({ topic: TOPIC, partition, batchSize: options.batch, maxInflight: producerWindow(client, PARTITIONS) }),
    );
    const ends = new Array<number>(PARTITIONS).fill(0);
    let started = performance.now();
    await runWindowed(
      plan.count,
      w.window,
      async (i) => {
        const b = plan.at(i);
        const first = await sendBatch(preloadProducers[b.partition]!, payloads.batch(b.partition, b.firstSeq, b.size));
        // Each partition starts empty and its values carry their partition-local sequence: offset = sequence.
        if (first !== b.firstSeq) throw new Error(`partition ${b.partition}: batch at sequence ${b.firstSeq} landed at offset ${first}`);
        ends[b.partition] = Math.max(ends[b.partition]!, b.firstSeq + b.size);
      },
      { timeoutMs: options.phaseTimeoutMs },
    );
    const preloadSeconds = (performance.now() - started) / 1000;
    await Promise.all(preloadProducers.map((p) => p.close()));
    const preloaded = [...ends];
    progress(`  preloaded at ${int(w.records / preloadSeconds)} rec/s`);

    // ── consume ────────────────────────────────────────────────────────────────────────────
    const coverage = new Coverage(preloaded);
    let wrongValues = 0;
    const memberFailures: string[] = [];
    // The members join and the group settles before they start reading: until `go`, each holds
    // at most its credit window of records (1000 per partition) and takes none out.
    let go = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      go = resolve;
    });
    const joinedAt = performance.now();
    for (let index = 0; index < MEMBERS; index++) {
      const socket = new BreakableSocket();
      const memberErrors = new ClientErrors();
      // No reconnect: a broken member must stay gone, as a dead process would.
      const memberClient = sdkClient(brook.url, memberErrors, { WebSocket: socket.WebSocket, reconnect: false });
      const consumer = memberClient.consumer<string>({ topic: TOPIC, group: GROUP, sessionTimeoutMs: options.sessionTimeoutMs });
      const member: Member = { index, errors: memberErrors, socket, client: memberClient, consumer, state: 'live', consumed: 0, loop: Promise.resolve() };
      member.loop = (async () => {
        await gate;
        for await (const r of consumer) {
          if (member.state !== 'live') continue;
          coverage.mark(r.partition, r.offset);
          member.consumed++;
          if (r.offset < (preloaded[r.partition] ?? 0) && Number(r.value.slice(0, 10)) !== r.offset) wrongValues++;
        }
      })().catch((err: unknown) => {
        // A broken member's iterator ends with its connection: expected.
        if (member.state === 'live') memberFailures.push(`member ${index}: ${errorText(err)}`);
      });
      members.push(member);
    }
    const live = (): Member[] => members.filter((m) => m.state === 'live');
    const failIfBroken = (): void => {
      if (memberFailures.length > 0) throw new Error(memberFailures.join('; '));
    };
    const total = (upTo: readonly number[]): number => upTo.reduce((a, b) => a + b, 0);
    // Each break may take the session timeout plus a heartbeat interval; then some slack.
    const rebalanceTimeoutMs = 2 * options.sessionTimeoutMs + 10_000;
    const settled = (): boolean => members.every((m) => m.consumer.assignment.length === PARTITIONS / MEMBERS);
    const settledMs = await until('the group settling', settled, rebalanceTimeoutMs, joinedAt);
    progress(`  ${MEMBERS} members joined; each owned ${PARTITIONS / MEMBERS} partitions after ${ms(settledMs)} ms`);
    started = performance.now();
    go();
    await until(
      'consuming the preloaded records',
      () => {
        failIfBroken();
        return coverage.counts.every((n, p) => n >= (preloaded[p] ?? 0));
      },
      options.phaseTimeoutMs,
      started,
    );
    const consumeSeconds = (performance.now() - started) / 1000;
    const perMember = members.map((m) => m.consumed);
    progress(`  ${MEMBERS} members consumed ${int(w.records)} at ${int(w.records / consumeSeconds)} rec/s`);

    // ── breaks ─────────────────────────────────────────────────────────────────────────────
    // The server's heartbeat interval is a third of the session timeout (src/engine/groups).
    const heartbeatIntervalMs = Math.round(options.sessionTimeoutMs / 3);
    trickle = new Trickle(client, preloaded);
    trickle.start(performance.now() + 4 * rebalanceTimeoutMs + 4 * STEADY_MS);
    const rebalances: RebalanceResult[] = [];
    for (const how of ['kill', 'freeze'] as const) {
      // At a random point of the heartbeat cycle: the rebalance waits for heartbeats, so a fixed
      // schedule would always measure the same phase of it.
      await sleep(STEADY_MS + Math.random() * heartbeatIntervalMs);
      failIfBroken();
      const victim = live().find((m) => m.consumer.assignment.length > 0);
      if (victim === undefined) throw new Error('no live member owns a partition');
      const partitionsLost = victim.consumer.assignment.length;
      const at = performance.now();
      victim.state = how === 'kill' ? 'killed' : 'frozen';
      if (how === 'kill') victim.socket.kill();
      else victim.socket.freeze();
      const survivors = live();
      const took = await until(
        `the ${survivors.length} remaining members owning all ${PARTITIONS} partitions after a ${how}`,
        () => {
          failIfBroken();
          return owned(survivors)?.size === PARTITIONS;
        },
        rebalanceTimeoutMs,
        at,
      );
      rebalances.push({ how, partitionsLost, ms: took });
      progress(`  ${how} of a member owning ${partitionsLost} partitions: the other ${survivors.length} owned all ${PARTITIONS} after ${ms(took)} ms (session timeout ${int(options.sessionTimeoutMs)} ms)`);
    }
    await sleep(STEADY_MS);
    const t = trickle;
    trickle = null;
    const trickled = await t.stop(CATCH_UP_MS);
    if (t.failures.length > 0) throw new Error(`producing during the breaks failed: ${t.failures.join('; ')}`);
    const finalEnds = t.ends;
    const offsets = total(finalEnds);
    progress(`  ${int(trickled)} records produced across the breaks; waiting for the members to consume all ${int(offsets)} offsets`);

    // ── verification ───────────────────────────────────────────────────────────────────────
    try {
      await until(
        'consuming every offset',
        () => {
          failIfBroken();
          return coverage.counts.every((n, p) => n >= (finalEnds[p] ?? 0));
        },
        CATCH_UP_MS,
      );
    } catch (err) {
      // Reported below as missing offsets; only a member failure is thrown.
      if (memberFailures.length > 0) throw err;
    }
    const missing = coverage.missing(finalEnds);
    // A broken member's client reports its lost connection: expected, so only the others count.
    const ownErrors = [errors, ...live().map((m) => m.errors)].flatMap((e) => e.seen);
    return {
      records: w.records,
      recordBytes: RECORD_BYTES,
      partitions: PARTITIONS,
      members: MEMBERS,
      sessionTimeoutMs: options.sessionTimeoutMs,
      heartbeatIntervalMs,
      preload: { seconds: preloadSeconds, recPerSec: w.records / preloadSeconds },
      consume: { seconds: consumeSeconds, recPerSec: w.records / consumeSeconds, settledMs, perMember },
      rebalances,
      verification: {
        offsets,
        consumedAtLeastOnce: offsets - missing.count,
        missing: missing.count,
        firstMissing: missing.first,
        duplicates: coverage.duplicates,
        wrongValues,
      },
      clientErrors: { count: ownErrors.length, first: ownErrors },
    };
  } finally {
    trickle?.stop(0).catch(() => undefined);
    for (const m of members) {
      // A frozen member would wait out closeTimeoutMs for replies that never come: cut it first.
      if (m.state === 'frozen') m.socket.kill();
    }
    await Promise.allSettled(members.map((m) => m.client.close()));
    await Promise.allSettled(members.map((m) => m.loop));
    await producerClient?.close().catch(() => undefined);
    await brook.stop();
  }
}
