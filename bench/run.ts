/**
 * Brook's benchmark harness: `node --import tsx bench/run.ts [--quick] [--only=log,scale] …`.
 * Runs the disk floor, the log suite (Brook in-process, over HTTP and on JetStream, NATS
 * JetStream, Redis Streams on the same workload), the scale suite, the sdk suite (Brook's
 * TypeScript SDK against NATS and Redis clients), the latency suite (end-to-end at a steady rate),
 * the groups suite (consumer-group consumption and rebalancing), the cdc suite (PostgreSQL
 * commit → subscriber against a bare pg-logical-replication consumer), the queues suite (work
 * queues against BullMQ and RabbitMQ) and the fanout suite (channels to WebSocket subscribers vs
 * Socket.IO and a naive ws loop, connection density); prints tables with ratios
 * and targets and writes bench/results/<name>-<timestamp>.json and latest.json. `--help` lists
 * the flags.
 */
import { execFile } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { keepHeapHeadroom } from '../src/lib/heap-headroom.js';
import { parseBenchArgs, type BenchOptions, type SuiteName } from './lib/args.js';
import { NATS_SERVER } from './lib/nats-server.js';
import { REPO_ROOT } from './lib/paths.js';
import { removeStaleTempDirs } from './lib/temp.js';
import { fixed, int, ms, ratio, table, target, verdict, writeResults, type Target } from './lib/report.js';
import { runFloor, type FloorResult } from './suites/floor.js';
import { runLog, type LogResult, type PhaseResult } from './suites/log.js';
import { runScale, type ScaleResult } from './suites/scale.js';
import { runSdk, type SdkResult } from './suites/sdk.js';
import { runLatency, type LatencyResult } from './suites/latency.js';
import { runGroups, type GroupsResult } from './suites/groups.js';
import { runCdc, type CdcResult } from './suites/cdc.js';
import { runQueues, type QueuesResult } from './suites/queues.js';
import { fanoutTargets, printFanout, runFanout, type FanoutResult } from './suites/fanout.js';

const run = promisify(execFile);
const HARNESS_HEAP_HEADROOM_MB = 64;
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** One line of a command's output (for versions and the like), or why it could not be had. */
async function outputLine(command: string, args: readonly string[], line: 'first' | 'last' = 'first'): Promise<string> {
  try {
    const lines = (await run(command, [...args])).stdout.trim().split('\n');
    return (line === 'first' ? lines[0] : lines.at(-1))?.trim() ?? '';
  } catch (err) {
    return `unavailable (${errorText(err)})`;
  }
}

async function machine(options: BenchOptions): Promise<Record<string, unknown>> {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memoryGb: Math.round(totalmem() / 1e9),
    kernel: release(),
    node: process.version,
    natsServer: await outputLine(NATS_SERVER, ['--version']),
    redisServer: await outputLine('redis-server', ['--version']),
    filesystem: await outputLine('df', ['--output=source,fstype', options.dir], 'last'),
  };
}

/** `tsc -p tsconfig.build.json`, so the server the bench spawns runs the current source. */
async function build(): Promise<string | null> {
  process.stderr.write('building dist/ (tsc -p tsconfig.build.json)\n');
  try {
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    return null;
  } catch (err) {
    const out = err as { stdout?: string; stderr?: string };
    return `build failed: ${(out.stdout ?? '').trim().split('\n').slice(0, 10).join('\n') || errorText(err)}`;
  }
}

// ---------------------------------------------------------------------------------- printing

/** A target's value or threshold with its unit: "1,000,000 rec/s", "412.3 MB/s", "0.77×". */
const amount = (unit: string, n: number): string =>
  unit === '×' ? `${fixed(n, 2)}×` : `${figure(unit, n)} ${unit}`;

/** A number as its unit is shown: MB/s with a decimal, ms with significant decimals, counts whole. */
const figure = (unit: string, n: number): string => (unit === 'MB/s' ? fixed(n) : unit === 'ms' && n < 1000 ? ms(n) : int(n));

const SYMBOL = { '>=': '≥', '<=': '≤', '<': '<' } as const;

const wanted = (t: Target): string => `${SYMBOL[t.comparison]} ${amount(t.unit, t.threshold)}${t.note === undefined ? '' : ` (${t.note})`}`;

const indent = (text: string): string =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');

/**
 * The issue's bound on the JetStream engine: at most 30% overhead in throughput over the raw
 * JetStream it runs on, i.e. Brook on JetStream ÷ raw NATS JetStream (rec/s) ≥ 0.77.
 */
const JETSTREAM_RATIO_TARGET = 0.77;

function printFloor(floor: FloorResult): void {
  const s = floor.sequentialWrite;
  const f = floor.fsyncLatency;
  console.log(`\nDisk floor (${floor.dir}, the filesystem every data directory is on)`);
  console.log(
    `  sequential write  ${int(s.bytes / 1024 / 1024)} MiB in 1 MiB chunks + fsync: ${fixed(s.mbPerSec)} MB/s` +
      `  (median of ${s.runs.length}: ${s.runs.map((r) => fixed(r, 0)).join(' / ')}; write ${fixed(s.writeSeconds, 2)} s + final fsync ${fixed(s.fsyncSeconds, 2)} s)`,
  );
  console.log(`  fsync latency     4 KiB append + fdatasync × ${f.count}: p50 ${ms(f.p50Ms)} ms, p99 ${ms(f.p99Ms)} ms, max ${ms(f.maxMs)} ms`);
}

function logTargets(log: LogResult, floor: FloorResult | null): Map<PhaseResult, Target> {
  const targets = new Map<PhaseResult, Target>();
  for (const { workload: w, results, brookJetStreamVsNats } of log.workloads) {
    const where = `log ${w.recordBytes} B × ${w.partitions} partition(s), Brook in-process`;
    for (const r of results) {
      if (r.system !== 'brook-embedded' || r.error !== undefined) continue;
      if (r.phase === 'publish' && w.recordBytes <= 100) {
        targets.set(r, target('durable append, 100 B records', `${where} publish`, r.recPerSec, 'rec/s', '>=', 1_000_000));
      } else if (r.phase === 'publish' && w.recordBytes >= 1000 && floor !== null) {
        targets.set(r, target('1 KB append within 2× of disk sequential write', `${where} publish`, r.mbPerSec, 'MB/s', '>=', floor.sequentialWrite.mbPerSec / 2, '½ disk'));
      } else if (r.phase === 'read' && w.recordBytes <= 100) {
        targets.set(r, target('read-back', `${where} read`, r.recPerSec, 'rec/s', '>=', 2_000_000));
      }
    }
    for (const phase of ['publish', 'read'] as const) {
      const value = brookJetStreamVsNats[phase];
      const r = results.find((x) => x.system === 'brook-jetstream' && x.phase === phase && x.error === undefined);
      if (value === null || r === undefined) continue;
      const from = `log ${w.recordBytes} B × ${w.partitions} partition(s), Brook on JetStream ÷ NATS JetStream ${phase}`;
      targets.set(r, target('JetStream engine overhead ≤ 30%', from, value, '×', '>=', JETSTREAM_RATIO_TARGET, 'of raw JetStream'));
    }
  }
  return targets;
}

function printLog(log: LogResult, targets: Map<PhaseResult, Target>): void {
  for (const { workload: w, results, brookJetStreamVsNats } of log.workloads) {
    console.log(
      `\nLog: ${int(w.records)} records × ${w.recordBytes} B, ${w.partitions} partition(s), batch ${w.batch}, ${w.window} batches in flight`,
    );
    const rows: string[][] = [];
    const errors: string[] = [];
    for (const phase of ['publish', 'read'] as const) {
      const ofPhase = results.filter((r) => r.phase === phase);
      const figure = (system: string): number | undefined => ofPhase.find((r) => r.system === system && r.error === undefined)?.recPerSec;
      const embedded = figure('brook-embedded');
      const http = figure('brook-http');
      for (const r of ofPhase) {
        const label = log.systems.find((s) => s.system === r.system)?.label ?? r.system;
        if (r.error !== undefined) {
          rows.push([phase, label, 'FAILED', '', '', '', '', '', '', '']);
          errors.push(`  ${label} ${phase}: ${r.error}`);
          continue;
        }
        const isBrook = r.system === 'brook-embedded' || r.system === 'brook-http' || r.system === 'brook-jetstream';
        const onNats = r.system === 'brook-jetstream' ? brookJetStreamVsNats[phase] : null;
        const t = targets.get(r);
        rows.push([
          phase,
          label,
          int(r.recPerSec),
          fixed(r.mbPerSec),
          r.batchLatency === undefined ? '' : `${ms(r.batchLatency.p50Ms)} / ${ms(r.batchLatency.p99Ms)}`,
          r.system === 'brook-embedded' ? '' : ratio(embedded, r.recPerSec),
          isBrook ? '' : ratio(http, r.recPerSec),
          onNats === null ? '' : `${onNats.toFixed(2)}×`,
          t === undefined ? '' : wanted(t),
          t === undefined ? '' : verdict(t),
        ]);
      }
    }
    console.log(
      table(['phase', 'system', 'rec/s', 'MB/s', 'batch p50/p99 ms', 'in-proc ÷ this', 'HTTP ÷ this', 'this ÷ NATS JS', 'target', ''], rows)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    if (errors.length > 0) console.log(errors.join('\n'));
  }
  const skipped = log.systems.filter((s) => s.skipped !== undefined);
  for (const s of skipped) console.log(`\n  ${s.label} did not run: ${s.skipped?.split('\n')[0] ?? ''}`);
  console.log('\n  "in-proc ÷ this" and "HTTP ÷ this" are Brook\'s figure divided by the row\'s (rec/s): above 1× Brook is faster.');
  console.log('  "this ÷ NATS JS" is Brook on JetStream\'s rec/s divided by raw NATS JetStream\'s: what the engine keeps of the');
  console.log(`  JetStream it runs on (target ≥ ${JETSTREAM_RATIO_TARGET}×, i.e. at most 30% overhead).`);
  console.log('  MB/s counts value bytes only (10^6 B). Systems run one after another on the same disk, synced before each phase;');
  console.log('  reads use one sequential reader per partition, one batch per request, right after publishing (page cache warm).');
  console.log('  Not durable-equivalent — what an acknowledged publish means:');
  for (const s of log.systems) console.log(`    ${s.label}: ${s.durability}`);
  for (const w of log.warnings) console.log(`  warning: ${w}`);
}

function scaleTargets(scale: ScaleResult): Target[] {
  const where = `scale ${int(scale.records)} × ${scale.recordBytes} B, Brook server`;
  return [
    target('RSS while appending', `${where} append`, scale.append.rss.peakMb, 'MB', '<', 200),
    target('RSS while reading from the start', `${where} read`, scale.read.rss.peakMb, 'MB', '<', 200),
    target('start-up after a clean stop', `${where} SIGTERM → /healthz`, scale.startAfterCleanStopMs, 'ms', '<', 1000),
    target('start-up after kill -9', `${where} kill -9 → /healthz`, scale.startAfterKillMs, 'ms', '<', 1000),
  ];
}

function printScale(scale: ScaleResult, targets: readonly Target[]): void {
  const [appendRss, readRss, clean, killed] = targets;
  console.log(`\nScale: Brook server (child process, HTTP), ${int(scale.records)} records × ${scale.recordBytes} B, ${scale.partitions} partition`);
  const rows = [
    ['append', int(scale.append.recPerSec), fixed(scale.append.mbPerSec), fixed(scale.append.rss.peakMb, 0), fixed(scale.append.rss.meanMb, 0), '< 200 MB', appendRss ? verdict(appendRss) : ''],
    ['read', int(scale.read.recPerSec), fixed(scale.read.mbPerSec), fixed(scale.read.rss.peakMb, 0), fixed(scale.read.rss.meanMb, 0), '< 200 MB', readRss ? verdict(readRss) : ''],
  ];
  console.log(
    table(['phase', 'rec/s', 'MB/s', 'RSS peak MB', 'RSS mean MB', 'target', ''], rows)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  console.log(`  VmHWM over the server's life: ${scale.vmHwmMb === null ? 'n/a' : `${fixed(scale.vmHwmMb, 0)} MB`}; data on disk ${fixed(scale.dataDirBytes / 1e6, 0)} MB (${fixed(scale.dataDirBytes / scale.records, 1)} B/record)`);
  console.log('  start-up, spawn → GET /healthz 200 (target < 1 s):');
  console.log(`    empty data dir           ${ms(scale.startEmptyMs)} ms`);
  console.log(
    `    after SIGTERM            ${ms(scale.startAfterCleanStopMs)} ms  ${clean ? verdict(clean) : ''}  (stop took ${ms(scale.cleanStop.stopMs)} ms, exit ${scale.cleanStop.exitCode ?? 'signal'}${scale.cleanStop.forced ? ', had to SIGKILL' : ''}; high watermark ${int(scale.highWatermarkAfterCleanStop)})`,
  );
  console.log(
    `    after kill -9 mid-append ${ms(scale.startAfterKillMs)} ms  ${killed ? verdict(killed) : ''}  (acknowledged up to ${int(scale.ackedBeforeKill)}, recovered ${int(scale.highWatermarkAfterKill)})`,
  );
}

// ------------------------------------------------------------------------------ sdk suite

/** The issue's SDK targets: publish ≥ 2× the best competitor; consume ≥ the best and ≥ 2× JetStream. */
const SDK_PUBLISH_VS_BEST = 2;
const SDK_CONSUME_VS_BEST = 1;
const SDK_CONSUME_VS_JETSTREAM = 2;

function labelOf(systems: readonly { system: string; label: string }[], system: string): string {
  return systems.find((s) => s.system === system)?.label ?? system;
}

/** Per workload, the three ratio targets (those with a figure). */
function sdkTargets(sdk: SdkResult): Target[][] {
  return sdk.workloads.map(({ workload: w, ratios: r }) => {
    const from = `sdk ${w.recordBytes} B × ${w.partitions} partition(s)`;
    const out: Target[] = [];
    if (r.publishVsBest !== null && r.bestPublish !== null) {
      out.push(target('SDK publish ≥ 2× best competitor', `${from}, Brook SDK ÷ ${labelOf(sdk.systems, r.bestPublish.system)} publish`, r.publishVsBest, '×', '>=', SDK_PUBLISH_VS_BEST));
    }
    if (r.consumeVsBest !== null && r.bestConsume !== null) {
      out.push(target('SDK consume ≥ best competitor', `${from}, Brook SDK ÷ ${labelOf(sdk.systems, r.bestConsume.system)} consume`, r.consumeVsBest, '×', '>=', SDK_CONSUME_VS_BEST));
    }
    if (r.consumeVsJetStream !== null) {
      out.push(target('SDK consume ≥ 2× JetStream', `${from}, Brook SDK ÷ NATS JetStream consume`, r.consumeVsJetStream, '×', '>=', SDK_CONSUME_VS_JETSTREAM));
    }
    return out;
  });
}

function printSdk(sdk: SdkResult, targets: readonly Target[][]): void {
  sdk.workloads.forEach(({ workload: w, results }, i) => {
    console.log(
      `\nSDK: ${int(w.records)} records × ${w.recordBytes} B, ${w.partitions} partition(s), batch ${w.batch}, ${w.window} batches in flight`,
    );
    const rows: string[][] = [];
    const errors: string[] = [];
    for (const phase of ['publish', 'read'] as const) {
      const ofPhase = results.filter((r) => r.phase === phase);
      const brook = ofPhase.find((r) => r.system === 'brook-sdk' && r.error === undefined)?.recPerSec;
      const name = phase === 'read' ? 'consume' : phase;
      for (const r of ofPhase) {
        const label = labelOf(sdk.systems, r.system);
        if (r.error !== undefined) {
          rows.push([name, label, 'FAILED', '', '', '']);
          errors.push(`  ${label} ${name}: ${r.error}`);
          continue;
        }
        rows.push([
          name,
          label,
          int(r.recPerSec),
          fixed(r.mbPerSec),
          r.batchLatency === undefined ? '' : `${ms(r.batchLatency.p50Ms)} / ${ms(r.batchLatency.p99Ms)}`,
          r.system === 'brook-sdk' ? '' : ratio(brook, r.recPerSec),
        ]);
      }
    }
    console.log(indent(table(['phase', 'system', 'rec/s', 'MB/s', 'batch p50/p99 ms', 'Brook SDK ÷ this'], rows)));
    if (errors.length > 0) console.log(errors.join('\n'));
    for (const t of targets[i] ?? []) console.log(`  ${t.source.replace(/^sdk [^,]*, /, '')}: ${amount(t.unit, t.value)}, target ${wanted(t)}  ${verdict(t)}`);
  });
  for (const s of sdk.systems) if (s.skipped !== undefined) console.log(`\n  ${s.label} did not run: ${s.skipped.split('\n')[0] ?? ''}`);
  console.log('\n  Brook SDK: `brook/client` in the bench process (ws as WebSocket) → Brook server child process over loopback.');
  console.log('  Publish: one producer per partition, one awaited sendMany() per workload batch; consume: one SDK consumer per');
  console.log('  partition, nextBatch(), a credit window of two producer batches. NATS and Redis are driven as in the log suite');
  console.log('  ("consume" is their read).');
  console.log('  Not durable-equivalent: Brook fsyncs before it acks; JetStream fsyncs every 2 min by default; Redis keeps nothing on disk.');
  for (const s of sdk.systems) console.log(`    ${s.label}: ${s.durability}`);
  if (sdk.clientErrors.count > 0) console.log(`  SDK background errors: ${sdk.clientErrors.count} (${sdk.clientErrors.first.join('; ')})`);
  for (const w of sdk.warnings) console.log(`  warning: ${w}`);
}

// -------------------------------------------------------------------------- latency suite

/** The issue's latency target: Brook's end-to-end p99 at the steady rate, fsync on. */
const LATENCY_P99_TARGET_MS = 2;

function latencyTargets(latency: LatencyResult): Target[] {
  const brook = latency.runs.find((r) => r.system === 'brook-sdk' && r.error === undefined);
  if (brook === undefined) return [];
  const from = `latency ${int(latency.rate)} rec/s × ${latency.recordBytes} B, Brook SDK end-to-end p99`;
  return [target('end-to-end p99 ≤ 2 ms (fsync on)', from, brook.latency.p99Ms, 'ms', '<=', LATENCY_P99_TARGET_MS)];
}

function printLatency(latency: LatencyResult, targets: readonly Target[]): void {
  console.log(
    `\nLatency: publish → consumer at a steady ${int(latency.rate)} rec/s × ${latency.recordBytes} B for ${latency.seconds} s (after ${latency.warmupSeconds} s of warm-up), each system in a bench process of its own`,
  );
  const rows = latency.runs.map((r) => {
    const l = r.latency;
    const t = r.system === 'brook-sdk' ? targets[0] : undefined;
    return r.error !== undefined && r.received === 0
      ? [r.label, 'FAILED', '', '', '', '', '', '', '', '']
      : [
          r.label,
          ms(l.p50Ms),
          ms(l.p99Ms),
          ms(l.p999Ms),
          ms(l.maxMs),
          ms(r.ackLatency.p99Ms),
          ms(r.sendLag.p99Ms),
          `${fixed((100 * r.received) / Math.max(1, r.records), 1)}%`,
          t === undefined ? '' : wanted(t),
          t === undefined ? '' : verdict(t),
        ];
  });
  console.log(indent(table(['system', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'ack p99 ms', 'send lag p99 ms', 'received', 'target', ''], rows)));
  for (const r of latency.runs) if (r.error !== undefined) console.log(`  ${r.label}: ${r.error.split('\n')[0] ?? ''}`);
  console.log('  Latency = receive time − intended send time: sends follow a fixed timeline (a worker thread ticks it), so a');
  console.log('  sender held up counts its lateness (coordinated-omission safe; "send lag" is that part). "ack" is the publisher\'s');
  console.log('  acknowledgement, also from the intended time. Percentiles from an HDR histogram (µs, 3 significant digits).');
  for (const r of latency.runs) console.log(`    ${r.label} (${r.how}): ${r.durability}`);
}

// --------------------------------------------------------------------------- groups suite

/** The issue's rebalance bound: the partitions of a member that died move within the session timeout + 1 s. */
const REBALANCE_SLACK_MS = 1000;

function groupsTargets(groups: GroupsResult): Target[] {
  const where = `groups ${groups.members} members × ${groups.partitions} partitions`;
  const bound = groups.sessionTimeoutMs + REBALANCE_SLACK_MS;
  return [
    ...groups.rebalances.map((r) =>
      target(
        `rebalance after a ${r.how === 'kill' ? 'killed' : 'silent'} member`,
        `${where}, ${r.how === 'kill' ? 'socket destroyed' : 'socket frozen'} → survivors own all`,
        r.ms,
        'ms',
        '<',
        bound,
        'session timeout + 1 s',
      ),
    ),
    target('no offset skipped', `${where}, ${int(groups.verification.offsets)} offsets produced`, groups.verification.missing, 'missing', '<', 1),
  ];
}

function printGroups(groups: GroupsResult, targets: readonly Target[]): void {
  const v = groups.verification;
  console.log(
    `\nGroups: ${groups.members} SDK members (one client each, in the bench process) of one group, ${groups.partitions} partitions, ${int(groups.records)} × ${groups.recordBytes} B preloaded`,
  );
  console.log(`  preload (SDK producers)   ${int(groups.preload.recPerSec)} rec/s`);
  console.log(
    `  consume (group of ${groups.members})     ${int(groups.consume.recPerSec)} rec/s in ${fixed(groups.consume.seconds, 2)} s, per member ${groups.consume.perMember.map(int).join(' / ')}  (joined and settled in ${ms(groups.consume.settledMs)} ms first)`,
  );
  console.log(`  session timeout ${int(groups.sessionTimeoutMs)} ms, heartbeat interval ${int(groups.heartbeatIntervalMs)} ms; records produced at 2,000 rec/s meanwhile`);
  for (const r of groups.rebalances) {
    const t = targets.find((x) => x.name.includes(r.how === 'kill' ? 'killed' : 'silent'));
    const what = r.how === 'kill' ? 'killed (socket destroyed, no leave)' : 'silent (socket open, nothing sent) ';
    const vsSession = r.ms >= groups.sessionTimeoutMs ? `session timeout + ${int(r.ms - groups.sessionTimeoutMs)} ms` : `session timeout − ${int(groups.sessionTimeoutMs - r.ms)} ms`;
    console.log(
      `  member ${what} → the others own all ${groups.partitions} after ${int(r.ms)} ms (${vsSession}; it owned ${r.partitionsLost})${t === undefined ? '' : `  target ${wanted(t)} ${verdict(t)}`}`,
    );
  }
  console.log(
    `  verification: ${int(v.consumedAtLeastOnce)} of ${int(v.offsets)} offsets consumed at least once, ${int(v.missing)} missing${v.firstMissing.length > 0 ? ` (${v.firstMissing.join(', ')})` : ''}; ${int(v.duplicates)} redelivered (at-least-once after the breaks); ${int(v.wrongValues)} wrong values`,
  );
  if (groups.clientErrors.count > 0) console.log(`  SDK background errors: ${groups.clientErrors.first.join('; ')}`);
  console.log('  A killed member\'s connection drops, so the server removes it at once; the survivors pick its partitions up at their');
  console.log('  next heartbeat. A silent one is removed when its session expires (the last heartbeat + the timeout), then the same.');
}

function printTargets(targets: readonly Target[]): void {
  if (targets.length === 0) return;
  console.log('\nTargets');
  const rows = targets.map((t) => [t.name, t.source, t.unit === '×' ? amount(t.unit, t.value) : figure(t.unit, t.value), wanted(t), verdict(t)]);
  console.log(
    table(['target', 'from', 'value', 'wanted', ''], rows)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
}

// ------------------------------------------------------------------------------ cdc suite

const CDC_P99_TARGET_MS = 5;
const CDC_THROUGHPUT_TARGET = 50_000;
const CDC_FLOOR = 'pg-logical-replication';

function cdcTargets(cdc: CdcResult): Target[] {
  const out: Target[] = [];
  // Issue 6's target is commit → browser-side subscriber: /v1/realtime on topic:cdc.<schema>.<table>.
  const at10k = cdc.latency.find((r) => r.system === 'brook-cdc-realtime' && r.rate === 10_000 && r.error === undefined);
  if (at10k) out.push(target('CDC commit → browser-side subscriber p99 ≤ 5 ms at 10k changes/s', 'cdc latency 10,000 changes/s, /v1/realtime subscriber of topic:cdc.public.<table>', at10k.latency.p99Ms, 'ms', '<=', CDC_P99_TARGET_MS));
  // The issue's throughput target is "durable in Brook": commit → fsynced topic (brook-cdc-topic).
  // The figure through the server to an SDK consumer (brook-cdc) is printed beside it.
  const tp = cdc.throughput.find((r) => r.system === 'brook-cdc-topic' && r.error === undefined);
  if (tp) out.push(target('CDC sustained ≥ 50,000 changes/s, durable in Brook', 'cdc 100-row transactions, commit → fsynced Brook topic', tp.changesPerSec, 'changes/s', '>=', CDC_THROUGHPUT_TARGET));
  return out;
}

function printCdc(cdc: CdcResult, targets: readonly Target[]): void {
  console.log(`\nCDC: PostgreSQL commit → subscriber (${cdc.latencySeconds} s per rate; 4 writer connections; latency from the intended commit-statement time)`);
  const rows = cdc.latency.map((r) => {
    const floor = cdc.latency.find((f) => f.system === CDC_FLOOR && f.rate === r.rate);
    return [r.system, int(r.rate), String(r.rowsPerTx), ms(r.latency.p50Ms), ms(r.latency.p99Ms), ms(r.latency.p999Ms), ms(r.latency.maxMs), ratio(r.latency.p99Ms, floor?.latency.p99Ms), r.error === undefined ? '' : 'FAILED'];
  });
  console.log(indent(table(['system', 'changes/s', 'rows/tx', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'p99 ÷ floor', ''], rows)));
  const tp = cdc.throughput.map((r) => {
    const floor = cdc.throughput.find((f) => f.system === CDC_FLOOR);
    return [r.system, int(r.changes), fixed(r.seconds, 2), int(r.changesPerSec), ratio(r.changesPerSec, floor?.changesPerSec), r.error === undefined ? '' : 'FAILED'];
  });
  console.log(indent(table(['system', 'changes', 'seconds', 'changes/s', '÷ floor', ''], tp)));
  console.log('  brook-cdc: Brook server + CDC source, topic durable (fsync) before it is pushed, Brook SDK consumer over /v1/ws.');
  console.log('  brook-cdc-realtime: the same server, browser-side subscriber of topic:cdc.public.<table> over /v1/realtime.');
  console.log('  brook-cdc-topic: CDC source + embedded engine in-process, read once durable. pg-logical-replication: bare');
  console.log('  consumer, no storage (the floor).');
  console.log('  brook-decoder: Brook\'s replication connection + pgoutput decoder, no storage. Max throughput is bounded by what');
  console.log('  the writers get PostgreSQL to commit on this machine (shared 2 cores).');
  for (const t of targets) console.log(`  target: ${t.name}: ${figure(t.unit, t.value)} ${t.unit} → ${verdict(t)}`);
}

// --------------------------------------------------------------------------- queues suite

/** Issue #4: Brook's queue ≥ 5× BullMQ and ≥ 3× RabbitMQ on enqueue and process rates. */
const QUEUE_RATIO_TARGETS = { bullmq: 5, rabbitmq: 3 } as const;

function queuesTargets(queues: QueuesResult): Target[] {
  const out: Target[] = [];
  const brook = queues.runs.find((r) => r.system === 'brook-inprocess' && r.error === undefined);
  if (brook === undefined) return out;
  for (const [competitor, threshold] of Object.entries(QUEUE_RATIO_TARGETS)) {
    const other = queues.runs.find((r) => r.system === competitor && r.error === undefined);
    if (other === undefined) continue;
    for (const phase of ['enqueue', 'process'] as const) {
      const a = brook[phase]?.jobsPerSec;
      const b = other[phase]?.jobsPerSec;
      if (a === undefined || b === undefined) continue;
      out.push(
        target(`queue ${phase} ≥ ${threshold}× ${other.label}`, `queues ${int(queues.jobs)} jobs, Brook in-process ÷ ${competitor} ${phase}`, a / b, '×', '>=', threshold),
      );
    }
  }
  return out;
}

function printQueues(queues: QueuesResult, targets: readonly Target[]): void {
  console.log(
    `\nQueues: ${int(queues.jobs)} jobs (~100 B JSON) enqueued in batches of ${queues.enqueueBatch} (${queues.enqueueWindow} in flight), ` +
      `then processed by ${queues.workers} concurrent workers acking each (prefetch ${queues.prefetch}); pickup latency over ${queues.pickupJobs} jobs enqueued one at a time to idle workers`,
  );
  const byName = new Map(queues.runs.map((r) => [r.system, r]));
  const rows = queues.runs.map((r) => [
    r.label,
    r.enqueue ? int(r.enqueue.jobsPerSec) : '-',
    r.process ? int(r.process.jobsPerSec) : '-',
    r.pickup ? ms(r.pickup.p50Ms) : '-',
    r.pickup ? ms(r.pickup.p99Ms) : '-',
    ratio(r.enqueue?.jobsPerSec, byName.get('bullmq')?.enqueue?.jobsPerSec) + ' / ' + ratio(r.process?.jobsPerSec, byName.get('bullmq')?.process?.jobsPerSec),
    ratio(r.enqueue?.jobsPerSec, byName.get('rabbitmq')?.enqueue?.jobsPerSec) + ' / ' + ratio(r.process?.jobsPerSec, byName.get('rabbitmq')?.process?.jobsPerSec),
    r.error === undefined ? (r.process && (r.process.duplicates > 0 || r.process.missing > 0) ? `dup ${r.process.duplicates} missing ${r.process.missing}` : 'ok') : `FAILED: ${r.error.slice(0, 80)}`,
  ]);
  console.log(
    indent(table(['system', 'enqueue jobs/s', 'process jobs/s', 'pickup p50 ms', 'p99 ms', 'vs BullMQ enq / proc', 'vs RabbitMQ enq / proc', ''], rows)),
  );
  for (const r of queues.runs) console.log(`  ${r.label}: ${r.durability}; workers: ${r.workerModel}`);
  for (const t of targets) console.log(`  target ${t.name}: ${fixed(t.value, 2)}× (${verdict(t)})`);
}

// -------------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  const options = parseBenchArgs(process.argv.slice(2));
  // The harness hosts every system's clients; its own full collections would stall them all
  // (10–25 ms each on this machine). Same headroom as `brook start` (docs/runtime.md).
  keepHeapHeadroom(HARNESS_HEAP_HEADROOM_MB * 1024 * 1024);
  const startedAt = new Date();
  const problems: string[] = [];
  let suites: SuiteName[] = [...options.suites];
  let systems = [...options.systems];

  const serverSuites: readonly SuiteName[] = ['scale', 'sdk', 'latency', 'groups', 'cdc', 'queues'];
  const needsBuild = suites.some((s) => serverSuites.includes(s)) || (suites.includes('log') && systems.includes('brook-http'));
  if (needsBuild && !options.noBuild) {
    const failure = await build();
    if (failure !== null) {
      // A stale dist/ would benchmark old code: skip what needs the server rather than mislead.
      problems.push(`${failure}\n  → skipped: Brook HTTP and the ${serverSuites.join(', ')} suites`);
      systems = systems.filter((s) => s !== 'brook-http');
      suites = suites.filter((s) => !serverSuites.includes(s));
    }
  }
  const effective: BenchOptions = { ...options, suites, systems };
  const stale = removeStaleTempDirs(options.dir);
  if (stale.length > 0) process.stderr.write(`removed ${stale.length} directories left by killed runs: ${stale.join(', ')}\n`);

  let floor: FloorResult | null = null;
  let log: LogResult | null = null;
  let scale: ScaleResult | null = null;
  let sdk: SdkResult | null = null;
  let latency: LatencyResult | null = null;
  let groups: GroupsResult | null = null;
  let cdc: CdcResult | null = null;
  let queues: QueuesResult | null = null;
  let fanout: FanoutResult | null = null;
  const wall = performance.now();
  if (suites.includes('floor')) {
    process.stderr.write('floor: sequential write and fsync latency\n');
    try {
      floor = await runFloor(effective);
    } catch (err) {
      problems.push(`floor failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('log')) {
    try {
      log = await runLog(effective);
      for (const s of log.systems) if (s.skipped !== undefined) problems.push(`${s.label} skipped: ${s.skipped}`);
      for (const w of log.workloads) {
        for (const r of w.results) if (r.error !== undefined) problems.push(`log ${w.workload.topic} ${r.system} ${r.phase}: ${r.error}`);
      }
    } catch (err) {
      problems.push(`log failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('scale')) {
    try {
      scale = await runScale(effective);
    } catch (err) {
      problems.push(`scale failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('sdk')) {
    try {
      sdk = await runSdk(effective);
      for (const s of sdk.systems) if (s.skipped !== undefined) problems.push(`sdk: ${s.label} skipped: ${s.skipped}`);
      for (const w of sdk.workloads) {
        for (const r of w.results) if (r.error !== undefined) problems.push(`sdk ${w.workload.topic} ${r.system} ${r.phase}: ${r.error}`);
      }
      if (sdk.clientErrors.count > 0) problems.push(`sdk: the SDK reported ${sdk.clientErrors.count} background errors: ${sdk.clientErrors.first.join('; ')}`);
    } catch (err) {
      problems.push(`sdk failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('latency')) {
    try {
      latency = await runLatency(effective);
      for (const r of latency.runs) if (r.error !== undefined) problems.push(`latency ${r.system}: ${r.error}`);
    } catch (err) {
      problems.push(`latency failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('groups')) {
    try {
      groups = await runGroups(effective);
      const v = groups.verification;
      if (v.missing > 0) problems.push(`groups: ${v.missing} offsets never consumed (${v.firstMissing.join(', ')})`);
      if (v.wrongValues > 0) problems.push(`groups: ${v.wrongValues} records whose value did not match their offset`);
      if (groups.clientErrors.count > 0) problems.push(`groups: the SDK reported background errors: ${groups.clientErrors.first.join('; ')}`);
    } catch (err) {
      problems.push(`groups failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('cdc')) {
    try {
      cdc = await runCdc(effective);
      for (const r of [...cdc.latency, ...cdc.throughput]) if (r.error !== undefined) problems.push(`cdc ${r.system}: ${r.error}`);
    } catch (err) {
      problems.push(`cdc failed: ${errorText(err)}`);
    }
  }
  if (suites.includes('queues')) {
    try {
      queues = await runQueues(effective);
      for (const r of queues.runs) {
        if (r.error !== undefined) problems.push(`queues ${r.system}: ${r.error}`);
        else if (r.process && (r.process.duplicates > 0 || r.process.missing > 0)) {
          problems.push(`queues ${r.system}: ${r.process.duplicates} jobs processed twice, ${r.process.missing} never`);
        }
      }
    } catch (err) {
      problems.push(`queues failed: ${errorText(err)}`);
    }
  }

  if (suites.includes('fanout')) {
    try {
      fanout = await runFanout(effective);
      for (const e of fanout.errors) problems.push(`fanout: ${e}`);
    } catch (err) {
      problems.push(`fanout failed: ${errorText(err)}`);
    }
  }

  const logTargetMap = log === null ? new Map<PhaseResult, Target>() : logTargets(log, floor);
  const scaleTargetList = scale === null ? [] : scaleTargets(scale);
  const sdkTargetLists = sdk === null ? [] : sdkTargets(sdk);
  const latencyTargetList = latency === null ? [] : latencyTargets(latency);
  const groupsTargetList = groups === null ? [] : groupsTargets(groups);
  const cdcTargetList = cdc === null ? [] : cdcTargets(cdc);
  const queuesTargetList = queues === null ? [] : queuesTargets(queues);
  const fanoutTargetList = fanout === null ? [] : fanoutTargets(fanout);
  const targets = [
    ...logTargetMap.values(),
    ...scaleTargetList,
    ...sdkTargetLists.flat(),
    ...latencyTargetList,
    ...groupsTargetList,
    ...cdcTargetList,
    ...queuesTargetList,
    ...fanoutTargetList,
  ];

  console.log(`\nBrook benchmarks — ${startedAt.toISOString()}${options.quick ? ' (quick: small counts, figures are indicative only)' : ''}`);
  if (floor !== null) printFloor(floor);
  if (log !== null) printLog(log, logTargetMap);
  if (scale !== null) printScale(scale, scaleTargetList);
  if (sdk !== null) printSdk(sdk, sdkTargetLists);
  if (latency !== null) printLatency(latency, latencyTargetList);
  if (groups !== null) printGroups(groups, groupsTargetList);
  if (cdc !== null) printCdc(cdc, cdcTargetList);
  if (queues !== null) printQueues(queues, queuesTargetList);
  if (fanout !== null) printFanout(fanout, fanoutTargetList);
  printTargets(targets);
  if (problems.length > 0) {
    console.log('\nProblems');
    // The first lines say what failed; the whole text is in the results file.
    for (const p of problems) console.log(`  ${p.split('\n').slice(0, 4).join('\n    ')}`);
  }
  const seconds = (performance.now() - wall) / 1000;
  const path = writeResults(options.name, startedAt, {
    name: options.name,
    startedAt: startedAt.toISOString(),
    seconds,
    options: effective,
    machine: await machine(options),
    floor,
    log,
    scale,
    sdk,
    latency,
    groups,
    cdc,
    queues,
    fanout,
    targets,
    problems,
  });
  console.log(`\n${fixed(seconds, 0)} s. Results: ${path} (and bench/results/latest.json)`);
  return problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  },
);
