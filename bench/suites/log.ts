import type { AnySystemName, BenchOptions, SystemName } from '../lib/args.js';
import type { LogSystem } from '../lib/log-system.js';
import { syncDisks } from '../lib/os.js';
import { fixed, int } from '../lib/report.js';
import {
  drainPartition,
  expectedPerPartition,
  Latency,
  PayloadFactory,
  planBatches,
  runWindowed,
  type LatencySummary,
  type Workload,
} from '../lib/workload.js';
import { BrookEmbedded } from '../brook/embedded.js';
import { BrookHttp } from '../brook/http.js';
import { BrookJetStream } from '../brook/jetstream.js';
import { NatsJetStream } from '../competitors/nats-jetstream.js';
import { RedisStreams } from '../competitors/redis-streams.js';

export type Phase = 'publish' | 'read';

export interface PhaseResult {
  readonly system: AnySystemName;
  readonly phase: Phase;
  readonly records: number;
  /** Value bytes moved (records × record size). */
  readonly bytes: number;
  readonly seconds: number;
  readonly recPerSec: number;
  /** 10^6 bytes per second of value payload. */
  readonly mbPerSec: number;
  /** Per-batch acknowledgement latency while publishing. */
  readonly batchLatency?: LatencySummary;
  readonly error?: string;
}

/**
 * Brook on JetStream's rec/s divided by raw NATS JetStream's, per phase: what Brook's JetStream
 * engine keeps of the JetStream it runs on (1 = no overhead; the target is ≥ 0.77, i.e. at most
 * 30% overhead). Null when either system has no figure for the phase.
 */
export interface JetStreamRatio {
  readonly publish: number | null;
  readonly read: number | null;
}

export interface WorkloadResult {
  readonly workload: Workload;
  readonly results: PhaseResult[];
  readonly brookJetStreamVsNats: JetStreamRatio;
}

export interface SystemInfo {
  readonly system: AnySystemName;
  readonly label: string;
  readonly durability: string;
  /** Why the system did not run, when it did not. */
  readonly skipped?: string;
}

export interface LogResult {
  readonly systems: SystemInfo[];
  readonly workloads: WorkloadResult[];
  /** Things that went wrong outside a measured phase (cleanup), kept for the record. */
  readonly warnings: string[];
}

function makeSystems(options: BenchOptions): LogSystem[] {
  const all: Record<SystemName, () => LogSystem> = {
    'brook-embedded': () => new BrookEmbedded(options.dir),
    'brook-http': () => new BrookHttp(options.dir, options.serverBin, Math.max(options.window, Math.max(...options.partitions))),
    'brook-jetstream': () => new BrookJetStream(options.dir),
    'nats-jetstream': () => new NatsJetStream(options.dir),
    'redis-streams': () => new RedisStreams(options.dir),
  };
  return options.systems.map((name) => all[name]());
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function jetStreamRatio(results: readonly PhaseResult[]): JetStreamRatio {
  const of = (phase: Phase): number | null => {
    const figure = (system: SystemName): number | undefined =>
      results.find((r) => r.system === system && r.phase === phase && r.error === undefined)?.recPerSec;
    const brook = figure('brook-jetstream');
    const nats = figure('nats-jetstream');
    return brook === undefined || nats === undefined || nats <= 0 ? null : brook / nats;
  };
  return { publish: of('publish'), read: of('read') };
}

async function publishPhase(system: LogSystem, w: Workload, timeoutMs: number): Promise<PhaseResult> {
  const plan = planBatches(w);
  const payloads = new PayloadFactory(w.recordBytes);
  const latency = new Latency();
  const started = performance.now();
  await runWindowed(
    plan.count,
    w.window,
    async (i) => {
      const b = plan.at(i);
      await system.publish(w.topic, payloads.batch(b.partition, b.firstSeq, b.size));
    },
    { timeoutMs, latency },
  );
  return { ...rates(system.name, 'publish', w, performance.now() - started), batchLatency: latency.summary() };
}

/** Every partition read from offset 0 by its own sequential reader, all partitions at once. */
async function readPhase(system: LogSystem, w: Workload, timeoutMs: number): Promise<PhaseResult> {
  const expected = expectedPerPartition(w);
  const started = performance.now();
  const deadline = started + timeoutMs;
  await Promise.all(
    expected.map(async (count, partition) => {
      const reader = await system.reader(w.topic, partition);
      await drainPartition(reader, count, w.recordBytes, w.batch, deadline);
    }),
  );
  return rates(system.name, 'read', w, performance.now() - started);
}

function rates(system: AnySystemName, phase: Phase, w: Workload, ms: number): PhaseResult {
  const seconds = ms / 1000;
  const bytes = w.records * w.recordBytes;
  return { system, phase, records: w.records, bytes, seconds, recPerSec: w.records / seconds, mbPerSec: bytes / 1e6 / seconds };
}

function failed(system: AnySystemName, phase: Phase, w: Workload, err: unknown): PhaseResult {
  return { system, phase, records: w.records, bytes: w.records * w.recordBytes, seconds: 0, recPerSec: 0, mbPerSec: 0, error: errorText(err) };
}

/** A short unmeasured round so every system is past JIT warm-up and connection set-up. */
async function warmUp(system: LogSystem, template: Workload, timeoutMs: number): Promise<void> {
  const w: Workload = { ...template, topic: 'warmup', records: Math.min(template.records, 20 * template.batch), recordBytes: 100, partitions: 1 };
  await system.createTopic(w.topic, w.partitions);
  await publishPhase(system, w, timeoutMs);
  await readPhase(system, w, timeoutMs);
  await system.deleteTopic(w.topic);
}

/** What `runWorkloads` measured: per workload, every ready system's publish and read. */
export interface WorkloadRuns {
  readonly systems: SystemInfo[];
  readonly workloads: { readonly workload: Workload; readonly results: PhaseResult[] }[];
  readonly warnings: string[];
}

/**
 * For each record size × partition count, each system publishes the same records (batches of
 * `batch`, `window` batches in flight) and then reads them all back from offset 0. Systems run
 * one after another, never at once (2 cores), each on a synced disk. Starts every system (a
 * system that fails to start or warm up is skipped and said so) and stops them all at the end.
 * `topicPrefix` names the topics (`<prefix>-<bytes>b-p<partitions>`) and the progress lines;
 * `onWorkload` runs after each workload (for progress lines about it).
 */
export async function runWorkloads(
  systems: readonly LogSystem[],
  options: BenchOptions,
  topicPrefix: string,
  onWorkload?: (w: Workload, results: readonly PhaseResult[]) => void,
): Promise<WorkloadRuns> {
  const infos: SystemInfo[] = [];
  const running: LogSystem[] = [];
  const ready: LogSystem[] = [];
  const warnings: string[] = [];
  const workloads: { workload: Workload; results: PhaseResult[] }[] = [];
  const template: Workload = { topic: '', records: options.records, recordBytes: 100, partitions: 1, batch: options.batch, window: options.window };
  try {
    for (const system of systems) {
      const info = { system: system.name, label: system.label, durability: system.durability };
      try {
        await system.start();
        running.push(system);
        await warmUp(system, template, options.phaseTimeoutMs);
        ready.push(system);
        infos.push(info);
      } catch (err) {
        progress(`  ${system.name}: skipped — ${errorText(err)}`);
        infos.push({ ...info, skipped: errorText(err) });
      }
    }
    for (const recordBytes of options.sizes) {
      for (const partitions of options.partitions) {
        const w: Workload = { ...template, topic: `${topicPrefix}-${recordBytes}b-p${partitions}`, recordBytes, partitions };
        const results: PhaseResult[] = [];
        progress(`${topicPrefix}: ${int(w.records)} × ${recordBytes} B, ${partitions} partition(s)`);
        for (const system of ready) {
          let published = false;
          try {
            await system.createTopic(w.topic, partitions);
            await syncDisks();
            const result = await publishPhase(system, w, options.phaseTimeoutMs);
            results.push(result);
            published = true;
            progress(`  ${system.name.padEnd(15)} publish ${int(result.recPerSec).padStart(11)} rec/s ${fixed(result.mbPerSec)} MB/s`);
          } catch (err) {
            results.push(failed(system.name, 'publish', w, err));
            progress(`  ${system.name.padEnd(15)} publish FAILED: ${errorText(err)}`);
          }
          if (published) {
            try {
              const result = await readPhase(system, w, options.phaseTimeoutMs);
              results.push(result);
              progress(`  ${system.name.padEnd(15)} read    ${int(result.recPerSec).padStart(11)} rec/s ${fixed(result.mbPerSec)} MB/s`);
            } catch (err) {
              results.push(failed(system.name, 'read', w, err));
              progress(`  ${system.name.padEnd(15)} read FAILED: ${errorText(err)}`);
            }
          }
          try {
            await system.deleteTopic(w.topic);
          } catch (err) {
            // Not fatal to the measurement: the data goes when the system stops.
            warnings.push(`${system.name}: deleting ${w.topic} failed: ${errorText(err)}`);
          }
        }
        workloads.push({ workload: w, results });
        onWorkload?.(w, results);
      }
    }
  } finally {
    for (const system of running) {
      try {
        await system.stop();
      } catch (err) {
        warnings.push(`${system.name}: stop failed: ${errorText(err)}`);
      }
    }
  }
  return { systems: infos, workloads, warnings };
}

/**
 * The log benchmark: every selected system on every workload (`runWorkloads`), plus Brook on
 * JetStream's figures divided by raw JetStream's.
 */
export async function runLog(options: BenchOptions): Promise<LogResult> {
  const runs = await runWorkloads(makeSystems(options), options, 'log', (_w, results) => {
    const ratio = jetStreamRatio(results);
    if (ratio.publish !== null || ratio.read !== null) {
      const shown = (r: number | null): string => (r === null ? '-' : `${fixed(r, 2)}×`);
      progress(`  brook-jetstream ÷ nats-jetstream: publish ${shown(ratio.publish)}, read ${shown(ratio.read)}`);
    }
  });
  const workloads = runs.workloads.map(({ workload, results }) => ({ workload, results, brookJetStreamVsNats: jetStreamRatio(results) }));
  return { systems: runs.systems, workloads, warnings: runs.warnings };
}
