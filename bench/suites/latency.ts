import { fork } from 'node:child_process';
import { join } from 'node:path';
import type { BenchOptions } from '../lib/args.js';
import type { LatencySystem } from '../lib/latency-system.js';
import { syncDisks } from '../lib/os.js';
import { REPO_ROOT } from '../lib/paths.js';
import { sleep } from '../lib/processes.js';
import { fixed, int, ms } from '../lib/report.js';
import { nowMs, Ticker } from '../lib/ticker.js';
import { Latency, PayloadFactory, type LatencySummary } from '../lib/workload.js';
import { DurableRelayLatency } from '../baselines/durable-relay-latency.js';
import { BrookJetStreamLatency } from '../brook/jetstream-latency.js';
import { BrookSdkLatency } from '../brook/sdk-latency.js';
import { NatsJetStreamLatency } from '../competitors/nats-latency.js';
import { RedisPubSubLatency } from '../competitors/redis-pubsub.js';

export const LATENCY_RECORD_BYTES = 100;
/** Unmeasured seconds at the same rate before the measured ones, on the same timeline. */
const WARMUP_SECONDS = 1;
/** How long the consumer gets, after the last send, to receive (and the publisher to have acknowledged) what is still missing. */
const DRAIN_MS = 10_000;
/** The run is abandoned when this many seconds of sends are unacknowledged (the system cannot keep up). */
const MAX_BEHIND_SECONDS = 10;

export interface LatencyRun {
  readonly system: LatencySystem['name'];
  readonly label: string;
  readonly durability: string;
  readonly how: string;
  /** Measured records (the warm-up's are not counted). */
  readonly records: number;
  /** Measured records received (each counted once). */
  readonly received: number;
  readonly duplicates: number;
  /**
   * Receive time − intended send time of every measured record. Records never received count
   * with the time they had been waiting when the drain ended.
   */
  readonly latency: LatencySummary;
  /** Acknowledgement time − intended send time of every measured record acknowledged. */
  readonly ackLatency: LatencySummary;
  /** Actual − intended send time: how late the bench's sender was (part of both latencies). */
  readonly sendLag: LatencySummary;
  readonly error?: string;
}

export interface LatencyResult {
  readonly rate: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly recordBytes: number;
  readonly runs: LatencyRun[];
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The 10-digit sequence each value starts with (lib/workload.ts PayloadFactory). */
function seqOf(value: Uint8Array | string): number {
  if (typeof value === 'string') return Number(value.slice(0, 10));
  let n = 0;
  for (let i = 0; i < 10; i++) n = n * 10 + ((value[i] ?? 48) - 48);
  return n;
}

async function measure(system: LatencySystem, options: BenchOptions): Promise<LatencyRun> {
  const rate = options.latencyRate;
  const warm = Math.round(rate * WARMUP_SECONDS);
  const measured = Math.round(rate * options.latencySeconds);
  const total = warm + measured;
  const payloads = new PayloadFactory(LATENCY_RECORD_BYTES);
  const latency = new Latency();
  const ackLatency = new Latency();
  const sendLag = new Latency();
  const seen = new Uint8Array(total);
  let received = 0;
  let duplicates = 0;
  let strays = 0;
  let unacked = 0;
  const sendFailures: string[] = [];
  const base = { system: system.name, label: system.label, durability: system.durability, how: system.how, records: measured };
  const summaries = (): Pick<LatencyRun, 'latency' | 'ackLatency' | 'sendLag'> => ({
    latency: latency.summary(),
    ackLatency: ackLatency.summary(),
    sendLag: sendLag.summary(),
  });
  let ticker: Ticker | null = null;
  try {
    await system.start();
    await syncDisks();
    await system.subscribe((value) => {
      const at = nowMs();
      const seq = seqOf(value);
      if (ticker === null || !(seq >= 0 && seq < total)) {
        strays++;
        return;
      }
      if (seen[seq] === 1) {
        duplicates++;
        return;
      }
      seen[seq] = 1;
      if (seq < warm) return;
      received++;
      latency.recordMs(at - ticker.intended(seq));
    });
    // Starts a little ahead so the first sends are not already late.
    const t = new Ticker(nowMs() + 20, rate, total);
    ticker = t;
    const hardDeadline = t.intended(total) + options.phaseTimeoutMs;
    await t.run(
      (seq) => {
        const batch = payloads.batch(0, seq, 1);
        const sentAt = nowMs();
        const measuredSend = seq >= warm;
        if (measuredSend) sendLag.recordMs(sentAt - t.intended(seq));
        unacked++;
        system.send(batch.values[0] as Buffer, batch.texts()[0]!).then(
          () => {
            unacked--;
            if (measuredSend) ackLatency.recordMs(nowMs() - t.intended(seq));
          },
          (err: unknown) => {
            unacked--;
            if (sendFailures.length < 5) sendFailures.push(`send ${seq}: ${errorText(err)}`);
          },
        );
      },
      () => {
        if (unacked > rate * MAX_BEHIND_SECONDS) return `over ${MAX_BEHIND_SECONDS} s of sends unacknowledged: the system cannot keep up`;
        const failure = sendFailures[0] ?? system.failures[0];
        if (failure !== undefined) return `failed: ${failure}`;
        return nowMs() > hardDeadline ? 'phase timeout' : null;
      },
    );
    const drainEnd = nowMs() + DRAIN_MS;
    while ((received < measured || unacked > 0) && nowMs() < drainEnd && system.failures.length === 0) await sleep(5);
    const missing = measured - received;
    if (missing > 0) {
      // Coordinated-omission safe to the end: a record never received waited at least this long.
      const now = nowMs();
      for (let seq = warm; seq < total; seq++) if (seen[seq] !== 1) latency.recordMs(now - t.intended(seq));
    }
    const problems = [
      ...(missing > 0 ? [`${int(missing)} of ${int(measured)} records not received ${DRAIN_MS / 1000} s after the last send`] : []),
      ...(unacked > 0 ? [`${int(unacked)} sends not acknowledged ${DRAIN_MS / 1000} s after the last`] : []),
      ...(strays > 0 ? [`${strays} records that were not sent in this run`] : []),
      ...sendFailures,
      ...system.failures,
    ];
    return { ...base, received, duplicates, ...summaries(), ...(problems.length > 0 ? { error: problems.join('; ') } : {}) };
  } catch (err) {
    return { ...base, received, duplicates, ...summaries(), error: errorText(err) };
  } finally {
    ticker?.stop();
    await system.stop().catch((err: unknown) => progress(`  ${system.name}: stop failed: ${errorText(err)}`));
  }
}

/** The systems a run measures, in order. */
function latencySystemNames(options: BenchOptions): LatencySystem['name'][] {
  return [
    'brook-sdk',
    'node-floor',
    ...(options.systems.includes('brook-jetstream') ? (['brook-jetstream'] as const) : []),
    ...(options.systems.includes('nats-jetstream') ? (['nats-jetstream'] as const) : []),
    ...(options.systems.includes('redis-streams') ? (['redis-pubsub'] as const) : []),
  ];
}

function latencySystem(name: LatencySystem['name'], options: BenchOptions): LatencySystem {
  switch (name) {
    case 'brook-sdk':
      return new BrookSdkLatency(options.dir, options.serverBin);
    case 'node-floor':
      return new DurableRelayLatency(options.dir, LATENCY_RECORD_BYTES);
    case 'brook-jetstream':
      return new BrookJetStreamLatency(options.dir);
    case 'nats-jetstream':
      return new NatsJetStreamLatency(options.dir);
    case 'redis-pubsub':
      return new RedisPubSubLatency(options.dir);
  }
}

/** Measures one system in this process (latency-child.ts calls it in a process of its own). */
export function measureLatency(name: LatencySystem['name'], options: BenchOptions): Promise<LatencyRun> {
  return measure(latencySystem(name, options), options);
}

const CHILD = join(REPO_ROOT, 'bench/suites/latency-child.ts');
/** Start-up and shut-down of a system's process and servers, beyond its measured time and drain. */
const CHILD_MARGIN_MS = 60_000;

/**
 * One system measured in a fresh bench process (latency-child.ts): each starts from the same
 * state. Run one after another in one process, the later systems paid for the earlier ones —
 * Redis pub/sub, last, had a p99 of 3.7–5.1 ms after the SDK suite (its sender late by 2.8–3.7 ms
 * at p99) against 1.2–1.4 ms measured alone, with no handle, timer or heap growth left over;
 * likely the JIT state of the shared harness code.
 */
function measureInChild(name: LatencySystem['name'], options: BenchOptions): Promise<LatencyRun> {
  const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: REPO_ROOT });
  const limitMs = (WARMUP_SECONDS + options.latencySeconds) * 1000 + DRAIN_MS + options.phaseTimeoutMs + CHILD_MARGIN_MS;
  const failed = (error: string): LatencyRun => ({
    system: name,
    label: name,
    durability: '',
    how: '',
    records: 0,
    received: 0,
    duplicates: 0,
    latency: EMPTY_SUMMARY,
    ackLatency: EMPTY_SUMMARY,
    sendLag: EMPTY_SUMMARY,
    error,
  });
  return new Promise<LatencyRun>((resolve) => {
    let run: LatencyRun | null = null;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(failed(`no result within ${Math.round(limitMs / 1000)} s`));
    }, limitMs);
    child.on('message', (message) => (run = message as LatencyRun));
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(failed(errorText(err)));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(run ?? failed(`its process exited (${code ?? signal}) without a result`));
    });
    child.send({ name, options });
  });
}

const EMPTY_SUMMARY: LatencySummary = { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 };

/**
 * End-to-end latency, publish → consumer, at a steady rate: each system's publisher and consumer
 * run in a bench process of their own, records go out on a fixed timeline (lib/ticker.ts) and
 * each one's latency is its receive time minus its intended send time (process.hrtime, one
 * clock). Systems run one after another, each with its own server.
 */
export async function runLatency(options: BenchOptions): Promise<LatencyResult> {
  const runs: LatencyRun[] = [];
  progress(`latency: ${int(options.latencyRate)} rec/s × ${LATENCY_RECORD_BYTES} B for ${options.latencySeconds} s (+${WARMUP_SECONDS} s warm-up) per system, each in a process of its own`);
  for (const name of latencySystemNames(options)) {
    const run = await measureInChild(name, options);
    runs.push(run);
    const l = run.latency;
    progress(
      `  ${name.padEnd(15)} p50 ${ms(l.p50Ms)} ms  p99 ${ms(l.p99Ms)} ms  p99.9 ${ms(l.p999Ms)} ms  max ${ms(l.maxMs)} ms` +
        `  ack p99 ${ms(run.ackLatency.p99Ms)} ms, send lag p99 ${ms(run.sendLag.p99Ms)} ms  (${fixed((100 * run.received) / Math.max(1, run.records), 1)}% received)${run.error === undefined ? '' : `  FAILED: ${run.error}`}`,
    );
  }
  return { rate: options.latencyRate, seconds: options.latencySeconds, warmupSeconds: WARMUP_SECONDS, recordBytes: LATENCY_RECORD_BYTES, runs };
}
