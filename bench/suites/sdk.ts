import type { AnySystemName, BenchOptions } from '../lib/args.js';
import type { LogSystem } from '../lib/log-system.js';
import type { Workload } from '../lib/workload.js';
import { BrookSdk } from '../brook/sdk.js';
import { NatsJetStream } from '../competitors/nats-jetstream.js';
import { RedisStreams } from '../competitors/redis-streams.js';
import { runWorkloads, type PhaseResult, type SystemInfo } from './log.js';

/**
 * Brook's figure divided by others' (rec/s), per phase; null when a figure is missing. "Best" is
 * the competitor (NATS JetStream, Redis Streams) with the most rec/s in that phase of this run.
 */
export interface SdkRatios {
  readonly bestPublish: { readonly system: AnySystemName; readonly recPerSec: number } | null;
  readonly bestConsume: { readonly system: AnySystemName; readonly recPerSec: number } | null;
  /** Brook SDK publish ÷ the best competitor's publish (target ≥ 2). */
  readonly publishVsBest: number | null;
  /** Brook SDK consume ÷ the best competitor's read (target ≥ 1). */
  readonly consumeVsBest: number | null;
  /** Brook SDK consume ÷ NATS JetStream's read (target ≥ 2). */
  readonly consumeVsJetStream: number | null;
}

export interface SdkWorkloadResult {
  readonly workload: Workload;
  /** Phase `read` is the consume phase (for Brook: the SDK consumer's async iterator). */
  readonly results: PhaseResult[];
  readonly ratios: SdkRatios;
}

export interface SdkResult {
  readonly systems: SystemInfo[];
  readonly workloads: SdkWorkloadResult[];
  readonly warnings: string[];
  /** Errors the SDK reported that no caller was waiting for (should be none). */
  readonly clientErrors: { readonly count: number; readonly first: readonly string[] };
}

const COMPETITORS = ['nats-jetstream', 'redis-streams'] as const;

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function ratios(results: readonly PhaseResult[]): SdkRatios {
  const ok = (system: AnySystemName, phase: 'publish' | 'read'): number | undefined =>
    results.find((r) => r.system === system && r.phase === phase && r.error === undefined)?.recPerSec;
  const best = (phase: 'publish' | 'read'): SdkRatios['bestPublish'] => {
    let top: SdkRatios['bestPublish'] = null;
    for (const system of COMPETITORS) {
      const recPerSec = ok(system, phase);
      if (recPerSec !== undefined && recPerSec > 0 && (top === null || recPerSec > top.recPerSec)) top = { system, recPerSec };
    }
    return top;
  };
  const div = (a: number | undefined, b: number | undefined): number | null => (a === undefined || b === undefined || b <= 0 ? null : a / b);
  const bestPublish = best('publish');
  const bestConsume = best('read');
  return {
    bestPublish,
    bestConsume,
    publishVsBest: div(ok('brook-sdk', 'publish'), bestPublish?.recPerSec),
    consumeVsBest: div(ok('brook-sdk', 'read'), bestConsume?.recPerSec),
    consumeVsJetStream: div(ok('brook-sdk', 'read'), ok('nats-jetstream', 'read')),
  };
}

/**
 * The SDK benchmark: Brook's TypeScript SDK in the bench process against the Brook server (child
 * process, loopback WebSocket) next to NATS JetStream (`nats`) and Redis Streams (`ioredis`), each
 * driven as in the log suite, on the same workloads in the same run (`runWorkloads`: publish in
 * batches with a bounded window, then read everything back from offset 0).
 */
export async function runSdk(options: BenchOptions): Promise<SdkResult> {
  const brook = new BrookSdk(options.dir, options.serverBin, options.batch, 'binary');
  const brookJson = new BrookSdk(options.dir, options.serverBin, options.batch, 'json');
  const systems: LogSystem[] = [brook, brookJson];
  if (options.systems.includes('nats-jetstream')) systems.push(new NatsJetStream(options.dir));
  if (options.systems.includes('redis-streams')) systems.push(new RedisStreams(options.dir));
  const runs = await runWorkloads(systems, options, 'sdk', (_w, results) => {
    const r = ratios(results);
    const shown = (x: number | null): string => (x === null ? '-' : `${x.toFixed(2)}×`);
    progress(`  brook-sdk ÷ best competitor: publish ${shown(r.publishVsBest)}, consume ${shown(r.consumeVsBest)}; consume ÷ JetStream ${shown(r.consumeVsJetStream)}`);
  });
  return {
    systems: runs.systems,
    workloads: runs.workloads.map(({ workload, results }) => ({ workload, results, ratios: ratios(results) })),
    warnings: runs.warnings,
    clientErrors: { count: brook.errors.count + brookJson.errors.count, first: [...brook.errors.seen, ...brookJson.errors.seen].slice(0, 10) },
  };
}
