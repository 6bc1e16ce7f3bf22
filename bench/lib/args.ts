import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.js';

export const SUITES = ['floor', 'log', 'scale', 'sdk', 'latency', 'groups', 'cdc', 'queues', 'fanout'] as const;
export type SuiteName = (typeof SUITES)[number];

export const SYSTEMS = ['brook-embedded', 'brook-http', 'brook-jetstream', 'nats-jetstream', 'redis-streams'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** Systems measured by a suite but not selectable with --systems (the sdk suite's Brook). */
export type AnySystemName = SystemName | 'brook-sdk' | 'brook-sdk-json';

/** Everything a run is parameterised by; written into the results file as is. */
export interface BenchOptions {
  readonly quick: boolean;
  readonly suites: readonly SuiteName[];
  readonly systems: readonly SystemName[];
  /** Records per log workload. @defaultValue 1_000_000 (100_000 with --quick) */
  readonly records: number;
  /** Records in the scale suite's log. @defaultValue 10_000_000 (300_000 with --quick) */
  readonly scaleRecords: number;
  /** @defaultValue [100, 1024] */
  readonly sizes: readonly number[];
  /** @defaultValue [1, 8] */
  readonly partitions: readonly number[];
  /** Records per append / publish batch / pipeline / read request. @defaultValue 1000 */
  readonly batch: number;
  /** Batches in flight at once while publishing. @defaultValue 8 */
  readonly window: number;
  /** Bytes written by the sequential-write floor. @defaultValue 1 GiB (256 MiB with --quick) */
  readonly floorBytes: number;
  /** Write + fdatasync rounds of the fsync-latency floor. @defaultValue 200 */
  readonly fsyncRounds: number;
  /** Where data directories and temp files go; same filesystem for every system. */
  readonly dir: string;
  /** Skip `tsc -p tsconfig.build.json` (dist/ already fresh). */
  readonly noBuild: boolean;
  /** The Brook launcher the server suites spawn. @defaultValue bin/brook.js of this checkout */
  readonly serverBin: string;
  /** Name used in the results file. */
  readonly name: string;
  /** Upper bound for one measured phase before it is abandoned. @defaultValue 600_000 */
  readonly phaseTimeoutMs: number;
  /** Measured seconds of the latency suite's steady load. @defaultValue 30 (5 with --quick) */
  readonly latencySeconds: number;
  /** Records per second of the latency suite's steady load. @defaultValue 10_000 */
  readonly latencyRate: number;
  /** Session timeout the groups suite's members ask for. @defaultValue 10_000 (the server's default) */
  readonly sessionTimeoutMs: number;
  /** Jobs enqueued and processed by the queues suite. @defaultValue 100_000 (20_000 with --quick) */
  readonly queueJobs: number;
}

const USAGE = `usage: node --import tsx bench/run.ts [flags]

  --quick              small record counts and short runs (smoke run, about 3 minutes)
  --only=SUITES        comma list of ${SUITES.join(', ')} (default: all; log also runs floor)
  --systems=NAMES      comma list of ${SYSTEMS.join(', ')}
                       (default: all; the sdk and latency suites run the NATS and Redis competitors listed)
  --records=N          records per log and sdk workload and in the groups suite's topic, and in
                       the scale log unless --scale-records
  --scale-records=N    records in the scale suite's log
  --sizes=B,B          record value sizes in bytes (default 100,1024)
  --partitions=P,P     partition counts (default 1,8)
  --batch=N            records per batch (default 1000)
  --window=N           batches in flight while publishing (default 8)
  --floor-bytes=N      bytes for the sequential write floor (default 1 GiB)
  --latency-seconds=N  measured seconds of the latency suite's steady load (default 30, quick 5)
  --latency-rate=N     records per second of the latency suite (default 10000)
  --session-timeout-ms=N  the groups suite members' session timeout (default 10000)
  --jobs=N             jobs of the queues suite (default 100000, quick 20000)
  --dir=PATH           where data and temp files go (default: the OS temp dir)
  --server-bin=PATH    Brook launcher to spawn (default bin/brook.js; e.g. another build to compare)
  --name=NAME          results file name prefix
  --no-build           do not run tsc -p tsconfig.build.json first
  --help`;

function positiveInt(flag: string, raw: string): number {
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`--${flag} must be a positive integer, got ${raw}`);
  return n;
}

function list<T extends string>(flag: string, raw: string, allowed: readonly T[]): T[] {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new Error(`--${flag}: unknown "${item}" (one of ${allowed.join(', ')})`);
    }
  }
  return items as T[];
}

function intList(flag: string, raw: string): number[] {
  return raw.split(',').map((s) => positiveInt(flag, s.trim()));
}

/** Parses argv; prints usage and exits on --help. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      systems: { type: 'string' },
      records: { type: 'string' },
      'scale-records': { type: 'string' },
      sizes: { type: 'string' },
      partitions: { type: 'string' },
      batch: { type: 'string' },
      window: { type: 'string' },
      'floor-bytes': { type: 'string' },
      dir: { type: 'string' },
      name: { type: 'string' },
      'server-bin': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      'phase-timeout-ms': { type: 'string' },
      'latency-seconds': { type: 'string' },
      'latency-rate': { type: 'string' },
      'session-timeout-ms': { type: 'string' },
      jobs: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick;
  let suites: SuiteName[] = values.only === undefined ? [...SUITES] : list('only', values.only, SUITES);
  // The 1 KB target is relative to the disk's sequential bandwidth, so log needs the floor.
  if (suites.includes('log') && !suites.includes('floor')) suites = ['floor', ...suites];
  const records = values.records === undefined ? (quick ? 100_000 : 1_000_000) : positiveInt('records', values.records);
  const scaleRecords =
    values['scale-records'] !== undefined
      ? positiveInt('scale-records', values['scale-records'])
      : values.records !== undefined
        ? records
        : quick
          ? 300_000
          : 10_000_000;
  return {
    quick,
    suites,
    systems: values.systems === undefined ? [...SYSTEMS] : list('systems', values.systems, SYSTEMS),
    records,
    scaleRecords,
    sizes: values.sizes === undefined ? [100, 1024] : intList('sizes', values.sizes),
    partitions: values.partitions === undefined ? [1, 8] : intList('partitions', values.partitions),
    batch: values.batch === undefined ? 1000 : positiveInt('batch', values.batch),
    window: values.window === undefined ? 8 : positiveInt('window', values.window),
    floorBytes:
      values['floor-bytes'] === undefined ? (quick ? 256 : 1024) * 1024 * 1024 : positiveInt('floor-bytes', values['floor-bytes']),
    fsyncRounds: 200,
    dir: values.dir ?? tmpdir(),
    noBuild: values['no-build'],
    serverBin: resolve(values['server-bin'] ?? join(REPO_ROOT, 'bin', 'brook.js')),
    name: values.name ?? `${values.only === undefined ? 'all' : suites.join('+')}${quick ? '-quick' : ''}`,
    phaseTimeoutMs: values['phase-timeout-ms'] === undefined ? 600_000 : positiveInt('phase-timeout-ms', values['phase-timeout-ms']),
    latencySeconds: values['latency-seconds'] === undefined ? (quick ? 5 : 30) : positiveInt('latency-seconds', values['latency-seconds']),
    latencyRate: values['latency-rate'] === undefined ? 10_000 : positiveInt('latency-rate', values['latency-rate']),
    sessionTimeoutMs:
      values['session-timeout-ms'] === undefined ? 10_000 : positiveInt('session-timeout-ms', values['session-timeout-ms']),
    queueJobs: values.jobs === undefined ? (quick ? 20_000 : 100_000) : positiveInt('jobs', values.jobs),
  };
}
