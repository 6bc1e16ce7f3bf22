/**
 * Fan-out to WebSocket subscribers (issue 5): one channel with 1,000 / 5,000 / 10,000
 * subscribers, a publisher going as fast as the slowest system lets it (at most `window`
 * messages per subscriber undelivered), for `seconds`; delivered messages/s at the clients and
 * p99 publish→deliver latency. Brook's `/v1/realtime`, Socket.IO (rooms, websocket transport)
 * and a naive `ws` broadcast loop, each server in its own child process, driven by the same load
 * generator in another child process that counts raw WebSocket frames without parsing them.
 * Then connection density: server RSS per idle subscribed connection at 20,000 (and 50,000)
 * connections.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { BenchOptions } from '../lib/args.js';
import { NatsServer } from '../lib/nats-server.js';
import { REPO_ROOT } from '../lib/paths.js';
import { fixed, int, ms, ratio, table, target, verdict, type Target } from '../lib/report.js';
import type { ConnectCommand, ConnectResult, RunCommand, RunResult } from '../fanout/loadgen.js';

export type FanoutSystem = 'brook' | 'socketio' | 'ws';
export const FANOUT_SYSTEMS: readonly FanoutSystem[] = ['brook', 'socketio', 'ws'];

export interface FanoutRun extends RunResult {
  readonly system: FanoutSystem;
  /** `shared`: one channel to all; `own`: many-channels run, each message to one connection's channel. */
  readonly mode: 'shared' | 'own';
  /** The connections also hold one channel each (the many-channels run). */
  readonly manyChannels: boolean;
  readonly subscribers: number;
  readonly connected: number;
  /** The server's CPU during the run, in % of one core. */
  readonly serverCpuPercent: number;
}

export interface DensityRun {
  readonly system: FanoutSystem;
  readonly connections: number;
  readonly connected: number;
  readonly rssBeforeMb: number;
  readonly rssAfterMb: number;
  readonly bytesPerConnection: number;
  readonly connectMs: number;
}

/** Brook's channel cluster on JetStream: one publisher on node A, subscribers on 1 node or split over 2. */
export interface ClusterFanoutRun extends RunResult {
  readonly nodes: 1 | 2;
  readonly subscribers: number;
  readonly connected: number;
  /** CPU of all Brook server processes together, in % of one core. */
  readonly serverCpuPercent: number;
}

export interface FanoutResult {
  readonly cluster?: readonly ClusterFanoutRun[];
  readonly seconds: number;
  readonly window: number;
  readonly payloadBytes: number;
  readonly runs: readonly FanoutRun[];
  readonly density: readonly DensityRun[];
  readonly errors: readonly string[];
}

const FD_LIMIT = 150_000;
const PAYLOAD_BYTES = 100;

interface SystemWire {
  readonly path: string;
  readonly protocol?: string;
  readonly hello?: string;
  readonly readyFrames: number;
  readonly publisherPath: string;
  readonly publisherProtocol?: string;
  readonly publisherHello?: string;
  readonly publishPrefix: string;
  readonly publishSuffix: string;
}

const WIRE: Record<FanoutSystem, SystemWire> = {
  brook: {
    path: '/v1/realtime',
    protocol: 'brook.realtime.v1',
    hello: '{"type":"subscribe","id":1,"channels":[{"channel":"bench:fan"}]}',
    readyFrames: 2, // welcome, subscribed
    publisherPath: '/v1/realtime',
    publisherProtocol: 'brook.realtime.v1',
    publishPrefix: '{"type":"publish","id":{seq},"channel":"bench:fan","data":',
    publishSuffix: '}',
  },
  socketio: {
    path: '/socket.io/?EIO=4&transport=websocket',
    hello: '40',
    readyFrames: 2, // engine.io open, socket.io connect
    publisherPath: '/socket.io/?EIO=4&transport=websocket&role=pub',
    publisherHello: '40',
    publishPrefix: '42["pub",',
    publishSuffix: ']',
  },
  ws: { path: '/', readyFrames: 0, publisherPath: '/pub', publishPrefix: '', publishSuffix: '' },
};

/** The many-channels run: every connection also on a channel (room) of its own, `{i}` = its index. */
const WIRE_MANY: Record<FanoutSystem, { readonly connect: SystemWire; readonly own: Pick<SystemWire, 'publisherPath' | 'publisherHello' | 'publishPrefix' | 'publishSuffix'> }> = {
  brook: {
    connect: { ...WIRE.brook, hello: '{"type":"subscribe","id":1,"channels":[{"channel":"bench:fan"},{"channel":"bench:c{i}"}]}' },
    own: { publisherPath: '/v1/realtime', publishPrefix: '{"type":"publish","id":{seq},"channel":"bench:c{i}","data":', publishSuffix: '}' },
  },
  socketio: {
    connect: { ...WIRE.socketio, path: '/socket.io/?EIO=4&transport=websocket&i={i}' },
    own: { publisherPath: WIRE.socketio.publisherPath, publisherHello: '40', publishPrefix: '42["pubTo","c{i}",', publishSuffix: ']' },
  },
  ws: {
    connect: { ...WIRE.ws, path: '/?i={i}' },
    own: { publisherPath: '/pubto', publishPrefix: '{i}|', publishSuffix: '' },
  },
};

/** Deliveries in flight in the many-channels run (each message has one recipient). */
const OWN_WINDOW = Number(process.env['BENCH_OWN_WINDOW'] ?? 2_000);

/** A node child with IPC, its fd limit raised (the bench runs as root or with a high hard limit). */
function spawnNode(script: string, args: readonly string[], extraNodeArgs: readonly string[] = [], env: Record<string, string> = {}): ChildProcess {
  const node = [process.execPath, ...extraNodeArgs, '--import', 'tsx', script, ...args].map((a) => `'${a}'`).join(' ');
  return spawn('bash', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${node}`], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
}

function nextMessage<T>(child: ChildProcess, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${what}: the process exited (${code})`));
    };
    child.once('exit', onExit);
    child.once('message', (m) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(m as T);
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** utime + stime of a process, in ms. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function startServer(system: FanoutSystem | 'brook-cluster', dir: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  const child = spawnNode('bench/fanout/servers.ts', [system], ['--expose-gc', '--max-old-space-size=4096'], { BENCH_DIR: dir, ...env });
  child.on('error', () => undefined); // surfaces as the missing `ready` below
  const ready = await nextMessage<{ port: number }>(child, 30_000, `${system} server start`);
  return { child, port: ready.port };
}

async function startLoadgen(): Promise<ChildProcess> {
  const child = spawnNode('bench/fanout/loadgen.ts', []);
  await nextMessage(child, 30_000, 'load generator start');
  return child;
}

async function serverRss(child: ChildProcess): Promise<number> {
  child.send({ cmd: 'rss' });
  return (await nextMessage<{ rss: number }>(child, 30_000, 'server rss')).rss;
}

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

export interface FanoutOptions {
  readonly subscriberCounts: readonly number[];
  /** Connections of the many-channels run (each on its own channel plus the shared one); 0 skips it. */
  readonly manyChannels: number;
  readonly seconds: number;
  readonly window: number;
  readonly densityCounts: readonly number[];
  readonly systems: readonly FanoutSystem[];
  /** Subscribers of the 1-node vs 2-node channel-cluster run (its own nats-server); 0 skips it. */
  readonly clusterSubscribers?: number;
}

/** The open-files limit the children can get (the hard limit, unless the bench may raise it). */
function fdLimit(): number {
  const out = spawnSync('bash', ['-c', `ulimit -n ${FD_LIMIT} 2>/dev/null; ulimit -n`], { encoding: 'utf8' });
  const n = Number(out.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 1024;
}

/**
 * Connection counts for the density test: 20,000 and 50,000, each capped to what one server
 * process can hold under the fd limit (less a margin for its own files), noted in the result.
 */
function densityCounts(wanted: readonly number[]): { counts: number[]; note: string | null } {
  const limit = fdLimit();
  const cap = limit - 200;
  const counts = [...new Set(wanted.map((n) => Math.min(n, cap)))];
  const capped = wanted.filter((n) => n > cap);
  return {
    counts,
    note: capped.length === 0 ? null : `open-files limit ${limit} (not raisable here): ${capped.map(int).join(', ')} connections capped to ${int(cap)}`,
  };
}

export function fanoutOptions(options: BenchOptions): FanoutOptions {
  return options.quick
    ? { subscriberCounts: [1_000, 5_000], manyChannels: 2_000, seconds: 3, window: 16, densityCounts: [20_000], systems: FANOUT_SYSTEMS, clusterSubscribers: 2_000 }
    : { subscriberCounts: [1_000, 5_000, 10_000], manyChannels: 10_000, seconds: 10, window: 16, densityCounts: [20_000, 50_000], systems: FANOUT_SYSTEMS, clusterSubscribers: 5_000 };
}

export async function runFanout(options: BenchOptions, fo: FanoutOptions = fanoutOptions(options)): Promise<FanoutResult> {
  const runs: FanoutRun[] = [];
  const density: DensityRun[] = [];
  const errors: string[] = [];
  /** One server and load generator: connect `subscribers`, then one timed run per phase. */
  async function measure(
    system: FanoutSystem,
    subscribers: number,
    wire: SystemWire,
    phases: readonly { readonly mode: 'shared' | 'own'; readonly publish: Pick<SystemWire, 'publisherPath' | 'publisherProtocol' | 'publisherHello' | 'publishPrefix' | 'publishSuffix'>; readonly window: number }[],
    manyChannels: boolean,
  ): Promise<void> {
    const { child: server, port } = await startServer(system, options.dir);
    const loadgen = await startLoadgen();
    try {
      const connect: ConnectCommand = {
        cmd: 'connect',
        port,
        count: subscribers,
        path: wire.path,
        ...(wire.protocol === undefined ? {} : { protocol: wire.protocol }),
        ...(wire.hello === undefined ? {} : { hello: wire.hello }),
        readyFrames: wire.readyFrames,
        sourceAddresses: [],
        sampled: 200,
      };
      loadgen.send(connect);
      const connected = await nextMessage<ConnectResult>(loadgen, 300_000, `${system} connect`);
      if (connected.failed > 0) errors.push(`${system} ${subscribers}: ${connected.failed} connections failed (${connected.firstError})`);
      for (const phase of phases) {
        const p = phase.publish;
        const run: RunCommand = {
          cmd: 'run',
          port,
          seconds: fo.seconds,
          window: phase.window,
          mode: phase.mode,
          publisherPath: p.publisherPath,
          ...(system === 'brook' ? { publisherProtocol: 'brook.realtime.v1' } : {}),
          ...(p.publisherHello === undefined ? {} : { publisherHello: p.publisherHello }),
          publishPrefix: p.publishPrefix,
          publishSuffix: p.publishSuffix,
          payloadBytes: PAYLOAD_BYTES,
        };
        loadgen.send(run);
        await nextMessage<{ measuring: true }>(loadgen, 60_000, `${system} warm-up`);
        const cpu0 = await cpuMs(server.pid!);
        const t0 = performance.now();
        await nextMessage<{ measured: true }>(loadgen, fo.seconds * 1000 + 60_000, `${system} run`);
        const serverCpuPercent = (((await cpuMs(server.pid!)) - cpu0) / (performance.now() - t0)) * 100;
        const result = await nextMessage<RunResult & { error?: string }>(loadgen, 60_000, `${system} result`);
        if (result.error !== undefined) throw new Error(result.error);
        runs.push({ ...result, system, mode: phase.mode, manyChannels, subscribers, connected: connected.connected, serverCpuPercent });
        progress(
          `  ${phase.mode}: ${Math.round(result.deliveredPerSec).toLocaleString('en-US')} msg/s delivered, p99 ${result.p99Ms.toFixed(1)} ms, server CPU ${serverCpuPercent.toFixed(0)}%, load generator CPU ${result.cpuPercent.toFixed(0)}%`,
        );
      }
    } catch (err) {
      errors.push(`${system} ${subscribers}${manyChannels ? ' (many channels)' : ''}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await stop(loadgen);
      await stop(server);
    }
  }
  for (const subscribers of fo.subscriberCounts) {
    for (const system of fo.systems) {
      progress(`fanout: ${system}, ${subscribers} subscribers, ${fo.seconds} s`);
      await measure(system, subscribers, WIRE[system], [{ mode: 'shared', publish: WIRE[system], window: fo.window }], false);
    }
  }
  if (fo.manyChannels > 0) {
    for (const system of fo.systems) {
      progress(`many channels: ${system}, ${fo.manyChannels} connections each on its own channel + one shared`);
      const many = WIRE_MANY[system];
      await measure(system, fo.manyChannels, many.connect, [
        { mode: 'own', publish: many.own, window: OWN_WINDOW },
        { mode: 'shared', publish: WIRE[system], window: fo.window },
      ], true);
    }
  }
  const cluster: ClusterFanoutRun[] = [];
  if ((fo.clusterSubscribers ?? 0) > 0) {
    try {
      cluster.push(...(await runClusterFanout(options, fo, fo.clusterSubscribers!)));
    } catch (err) {
      errors.push(`cluster fan-out: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const plannedDensity = densityCounts(fo.densityCounts);
  if (plannedDensity.note !== null) errors.push(`density: ${plannedDensity.note}`);
  for (const connections of plannedDensity.counts) {
    for (const system of fo.systems) {
      progress(`density: ${system}, ${connections} idle connections`);
      const { child: server, port } = await startServer(system, options.dir);
      const loadgen = await startLoadgen();
      try {
        const rssBefore = await serverRss(server);
        const wire = WIRE[system];
        // Past ~28k connections one source address runs out of ports: spread over 127.0.0.x.
        const sources = Array.from({ length: Math.ceil(connections / 25_000) }, (_, i) => `127.0.0.${i + 1}`);
        loadgen.send({
          cmd: 'connect',
          port,
          count: connections,
          path: wire.path,
          ...(wire.protocol === undefined ? {} : { protocol: wire.protocol }),
          ...(wire.hello === undefined ? {} : { hello: wire.hello }),
          readyFrames: wire.readyFrames,
          sourceAddresses: sources,
          sampled: 0,
        } satisfies ConnectCommand);
        const connected = await nextMessage<ConnectResult>(loadgen, 300_000, `${system} density connect`);
        if (connected.failed > 0) errors.push(`${system} density ${connections}: ${connected.failed} failed (${connected.firstError})`);
        await new Promise((r) => setTimeout(r, 1000));
        const rssAfter = await serverRss(server);
        const bytesPerConnection = (rssAfter - rssBefore) / Math.max(1, connected.connected);
        density.push({ system, connections, connected: connected.connected, rssBeforeMb: rssBefore / 1e6, rssAfterMb: rssAfter / 1e6, bytesPerConnection, connectMs: connected.ms });
        progress(`  ${connected.connected} connected in ${(connected.ms / 1000).toFixed(1)} s; RSS ${(rssBefore / 1e6).toFixed(0)} → ${(rssAfter / 1e6).toFixed(0)} MB = ${(bytesPerConnection / 1024).toFixed(1)} KiB per connection`);
      } catch (err) {
        errors.push(`${system} density ${connections}: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        await stop(loadgen);
        await stop(server);
      }
    }
  }
  return { seconds: fo.seconds, window: fo.window, payloadBytes: PAYLOAD_BYTES, runs, density, errors, cluster };
}

/**
 * Brook's channel cluster (JetStream engine, `channels.cluster`) on a nats-server of the bench's
 * own: `subscribers` on one node, then split evenly over two nodes; the publisher always on node A.
 */
async function runClusterFanout(options: BenchOptions, fo: FanoutOptions, subscribers: number): Promise<ClusterFanoutRun[]> {
  const nats = await NatsServer.start(options.dir, 'nats-fanout-');
  const out: ClusterFanoutRun[] = [];
  try {
    for (const nodes of [1, 2] as const) {
      progress(`cluster fan-out: ${nodes} Brook node(s) on JetStream, ${subscribers} subscribers, ${fo.seconds} s`);
      const env = { BENCH_NATS: nats.url, BENCH_NATS_PREFIX: `FAN${nodes}` };
      const servers: { child: ChildProcess; port: number }[] = [];
      let loadgen: ChildProcess | null = null;
      try {
        for (let i = 0; i < nodes; i++) servers.push(await startServer('brook-cluster', options.dir, env));
        loadgen = await startLoadgen();
        const wire = WIRE.brook;
        let connected = 0;
        for (let i = 0; i < nodes; i++) {
          const count = Math.floor(subscribers / nodes) + (i < subscribers % nodes ? 1 : 0);
          loadgen.send({
            cmd: 'connect',
            port: servers[i]!.port,
            count,
            path: wire.path,
            protocol: wire.protocol!,
            hello: wire.hello!,
            readyFrames: wire.readyFrames,
            sourceAddresses: [],
            sampled: Math.round(200 / nodes),
          } satisfies ConnectCommand);
          connected += (await nextMessage<ConnectResult>(loadgen, 300_000, `cluster node ${i} connect`)).connected;
        }
        loadgen.send({
          cmd: 'run',
          port: servers[0]!.port,
          seconds: fo.seconds,
          window: fo.window,
          mode: 'shared',
          publisherPath: wire.publisherPath,
          publisherProtocol: 'brook.realtime.v1',
          publishPrefix: wire.publishPrefix,
          publishSuffix: wire.publishSuffix,
          payloadBytes: PAYLOAD_BYTES,
        } satisfies RunCommand);
        await nextMessage<{ measuring: true }>(loadgen, 60_000, 'cluster warm-up');
        const cpu = async (): Promise<number> => (await Promise.all(servers.map((s) => cpuMs(s.child.pid!)))).reduce((a, b) => a + b, 0);
        const cpu0 = await cpu();
        const t0 = performance.now();
        await nextMessage<{ measured: true }>(loadgen, fo.seconds * 1000 + 60_000, 'cluster run');
        const serverCpuPercent = (((await cpu()) - cpu0) / (performance.now() - t0)) * 100;
        const result = await nextMessage<RunResult & { error?: string }>(loadgen, 60_000, 'cluster result');
        if (result.error !== undefined) throw new Error(result.error);
        out.push({ ...result, nodes, subscribers, connected, serverCpuPercent });
        progress(`  ${Math.round(result.deliveredPerSec).toLocaleString('en-US')} msg/s delivered, p99 ${result.p99Ms.toFixed(1)} ms, servers CPU ${serverCpuPercent.toFixed(0)}%`);
      } finally {
        if (loadgen !== null) await stop(loadgen);
        for (const s of servers) await stop(s.child);
      }
    }
  } finally {
    await nats.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------- report

const LABEL: Record<FanoutSystem, string> = { brook: 'Brook /v1/realtime', socketio: 'Socket.IO (rooms, ws)', ws: 'naive ws loop' };
const RATIO_TARGET = 5;
const RATIO_AT = 5_000;
const DENSITY_TARGET_BYTES = 10 * 1024;

/** ≥ 5× Socket.IO's delivered rate at 5,000 subscribers; ≤ 10 KiB per idle connection at 20,000. */
export function fanoutTargets(r: FanoutResult): Target[] {
  const out: Target[] = [];
  const brook = r.runs.find((x) => x.system === 'brook' && x.subscribers === RATIO_AT && !x.manyChannels);
  const sio = r.runs.find((x) => x.system === 'socketio' && x.subscribers === RATIO_AT && !x.manyChannels);
  if (brook && sio && sio.deliveredPerSec > 0) {
    out.push(target('fan-out ≥ 5× Socket.IO', `fanout ${int(RATIO_AT)} subscribers, delivered msg/s`, brook.deliveredPerSec / sio.deliveredPerSec, '×', '>=', RATIO_TARGET, 'of Socket.IO'));
  }
  for (const d of r.density.filter((x) => x.system === 'brook')) {
    out.push(target('RSS per idle WebSocket ≤ 10 KiB', `fanout density ${int(d.connections)} connections`, d.bytesPerConnection / 1024, 'KiB', '<=', DENSITY_TARGET_BYTES / 1024));
  }
  return out;
}

export function printFanout(r: FanoutResult, targets: readonly Target[]): void {
  console.log(`\nFan-out: one channel, ${r.payloadBytes} B payloads, publisher as fast as accepted (≤ ${r.window} undelivered per subscriber), ${r.seconds} s per run`);
  console.log('  load generator: separate process, raw sockets, frames counted without parsing; CPU in % of one core; machine shared with other work');
  const rows: string[][] = [];
  const oneChannel = r.runs.filter((x) => !x.manyChannels);
  for (const n of [...new Set(oneChannel.map((x) => x.subscribers))]) {
    const sio = oneChannel.find((x) => x.subscribers === n && x.system === 'socketio');
    for (const x of oneChannel.filter((y) => y.subscribers === n)) {
      rows.push([
        LABEL[x.system],
        int(n),
        int(x.deliveredPerSec),
        ms(x.p50Ms),
        ms(x.p99Ms),
        `${fixed(x.serverCpuPercent, 0)}%`,
        `${fixed(x.cpuPercent, 0)}%`,
        x.system === 'socketio' ? '1.00×' : ratio(x.deliveredPerSec, sio?.deliveredPerSec),
        x.closedDuringRun > 0 ? `${x.closedDuringRun} closed` : '',
      ]);
    }
  }
  console.log(indent(table(['system', 'subscribers', 'delivered msg/s', 'p50 ms', 'p99 ms', 'server CPU', 'loadgen CPU', 'vs Socket.IO', ''], rows)));
  const many = r.runs.filter((x) => x.manyChannels);
  if (many.length > 0) {
    console.log(`\n  Many channels: ${int(many[0]!.subscribers)} connections, each on its own channel (room) plus one shared`);
    console.log('  own = each message to one connection\'s channel (round robin, ≤ 2,000 in flight); shared = every message to all');
    const manyRows = many.map((x) => {
      const sio = many.find((y) => y.system === 'socketio' && y.mode === x.mode);
      return [LABEL[x.system], x.mode, int(x.deliveredPerSec), ms(x.p50Ms), ms(x.p99Ms), `${fixed(x.serverCpuPercent, 0)}%`, `${fixed(x.cpuPercent, 0)}%`, x.system === 'socketio' ? '1.00×' : ratio(x.deliveredPerSec, sio?.deliveredPerSec)];
    });
    console.log(indent(table(['system', 'mode', 'delivered msg/s', 'p50 ms', 'p99 ms', 'server CPU', 'loadgen CPU', 'vs Socket.IO'], manyRows)));
  }
  if (r.density.length > 0) {
    console.log('\n  Connection density: server RSS growth per idle connection (subscribed to one channel; after GC)');
    console.log(
      indent(
        table(
          ['system', 'connections', 'connected', 'RSS before MB', 'RSS after MB', 'KiB / connection'],
          r.density.map((d) => [LABEL[d.system], int(d.connections), int(d.connected), fixed(d.rssBeforeMb, 0), fixed(d.rssAfterMb, 0), fixed(d.bytesPerConnection / 1024, 1)]),
        ),
      ),
    );
  }
  if (r.cluster !== undefined && r.cluster.length > 0) {
    console.log('\n  Several nodes: Brook channel cluster on JetStream (its own nats-server), publisher on node A, subscribers on 1 node or split over 2 (same machine)');
    const one = r.cluster.find((x) => x.nodes === 1);
    console.log(
      indent(
        table(
          ['nodes', 'subscribers', 'delivered msg/s', 'p50 ms', 'p99 ms', 'servers CPU', 'loadgen CPU', 'vs 1 node'],
          r.cluster.map((x) => [String(x.nodes), int(x.connected), int(x.deliveredPerSec), ms(x.p50Ms), ms(x.p99Ms), `${fixed(x.serverCpuPercent, 0)}%`, `${fixed(x.cpuPercent, 0)}%`, x.nodes === 1 ? '1.00×' : ratio(x.deliveredPerSec, one?.deliveredPerSec)]),
        ),
      ),
    );
  }
  for (const t of targets) console.log(`  ${t.name} (${t.source}): ${t.unit === '×' ? `${fixed(t.value, 2)}×` : `${fixed(t.value, 1)} ${t.unit}`}  ${verdict(t)}`);
  for (const e of r.errors) console.log(`  problem: ${e}`);
}

const indent = (text: string): string =>
  text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
