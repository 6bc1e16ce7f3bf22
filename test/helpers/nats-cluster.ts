/**
 * A NATS cluster with JetStream that a test owns: N nats-server processes on loopback, each with
 * an ephemeral client port, an ephemeral cluster (route) port, a server name and a store directory
 * of its own under one temp directory. A node can be SIGKILLed and restarted with the same ports
 * and store, as a crashed machine coming back.
 *
 * Processes are bench/lib's ChildServer: killed by cleanup(), by the exit hooks of the test
 * worker, and by a watchdog should the worker die without running them.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { connect, StorageType, type NatsConnection } from 'nats';
import { ChildServer, freePort, isPortOpen, sleep } from '../../bench/lib/processes.js';
import { NATS_SERVER } from '../../bench/lib/nats-server.js';
import { tempDir } from './temp-dir.js';

/**
 * Whether a test that starts its own nats-server can run. Under CI=true a missing binary is an
 * error; elsewhere the test is skipped and says so loudly on stderr.
 */
export function requireNatsServer(binary = NATS_SERVER): boolean {
  if (existsSync(binary)) return true;
  if (process.env['CI'] === 'true') throw new Error(`${binary} is missing and CI=true`);
  process.stderr.write(`\n*** SKIPPED: ${binary} is missing (apt-get install nats-server); its tests did not run ***\n\n`);
  return false;
}

export interface NatsClusterOptions {
  /** @defaultValue 3 */
  readonly nodes?: number;
  /** Server names are `<name>-<i>`, the cluster is `<name>`. @defaultValue a random `brook-<hex>` */
  readonly name?: string;
  /** How long one node may take to open its client port. @defaultValue 10_000 */
  readonly readyTimeoutMs?: number;
}

export interface NatsNode {
  /** The server name (`-n`), as JetStream reports leaders and peers. */
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  /** HTTP monitoring (`/connz`, `/jsz`), on loopback too. */
  readonly monitorPort: number;
  readonly storeDir: string;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
}

export interface JetStreamReadyOptions {
  /** Also wait until a stream with this many replicas can be created (every peer is known). @defaultValue 1 */
  readonly replicas?: number;
  /** @defaultValue 30_000 */
  readonly timeoutMs?: number;
}

export class NatsCluster {
  private readonly processes: Array<ChildServer | null>;

  constructor(
    readonly name: string,
    readonly nodes: readonly NatsNode[],
    private readonly root: { readonly path: string; readonly remove: () => Promise<void> },
    private readonly readyTimeoutMs: number,
  ) {
    this.processes = nodes.map(() => null);
  }

  /** Every node's client URL. */
  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  running(index: number): boolean {
    return this.processes[index]?.running ?? false;
  }

  /** Starts node `index` (again: same ports, same store) and waits until its client port answers. */
  async start(index: number): Promise<void> {
    const node = this.node(index);
    if (this.running(index)) throw new Error(`${node.name} is already running`);
    const routes = this.nodes.filter((n) => n !== node).map((n) => `nats://127.0.0.1:${n.clusterPort}`);
    const { server } = await ChildServer.start({
      name: node.name,
      command: NATS_SERVER,
      args: [
        ...['-a', '127.0.0.1', '-p', String(node.port), '-m', String(node.monitorPort), '-n', node.name],
        ...['-js', '-sd', node.storeDir],
        ...['--cluster_name', this.name, '--cluster', `nats://127.0.0.1:${node.clusterPort}`, '--routes', routes.join(',')],
      ],
      ready: () => isPortOpen(node.port),
      readyTimeoutMs: this.readyTimeoutMs,
      pollMs: 20,
    });
    this.processes[index] = server;
  }

  /** SIGKILL: no shutdown, no flush, as a crashed machine. Resolves once the process is gone. */
  async kill(index: number): Promise<void> {
    const server = this.processes[index];
    this.processes[index] = null;
    await server?.stop('SIGKILL', 5_000);
  }

  /**
   * Waits until JetStream answers `$JS.API.INFO` (the cluster has a meta leader) and, with
   * `replicas` > 1, until a stream of that many replicas can be created, so every peer has joined.
   */
  async waitForJetStream(options: JetStreamReadyOptions = {}): Promise<void> {
    const replicas = options.replicas ?? 1;
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let last: unknown;
    await this.withConnection(async (nc) => {
      const jsm = await nc.jetstreamManager({ timeout: 2_000, checkAPI: false });
      for (;;) {
        try {
          await jsm.getAccountInfo();
          if (replicas > 1) {
            const probe = `PROBE_${randomBytes(4).toString('hex')}`;
            await jsm.streams.add({ name: probe, subjects: [`probe.${probe}`], num_replicas: replicas, storage: StorageType.Memory });
            await jsm.streams.delete(probe);
          }
          return;
        } catch (err) {
          // Expected while the meta group elects its leader or peers are still joining.
          last = err;
        }
        if (Date.now() > deadline) {
          const message = last instanceof Error ? last.message : String(last);
          throw new Error(`JetStream on cluster ${this.name} not ready (R${replicas}): ${message}`, { cause: last });
        }
        await sleep(200);
      }
    });
  }

  /** The index of the node leading a stream's RAFT group, once it has a leader. */
  async streamLeader(stream: string, timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = await this.streamLeaderOrNull(stream);
      if (index !== null) return index;
      if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** The index of the running node a client connection named `name` is on (`/connz`), or -1. */
  async nodeOfClient(name: string): Promise<number> {
    for (let i = 0; i < this.nodes.length; i++) {
      if (!this.running(i)) continue;
      const response = await fetch(`http://127.0.0.1:${this.node(i).monitorPort}/connz?limit=1024`, { signal: AbortSignal.timeout(2_000) });
      const connz = (await response.json()) as { connections?: Array<{ name?: string }> };
      if (connz.connections?.some((c) => c.name === name)) return i;
    }
    return -1;
  }

  /**
   * Asks a stream's leader to step down until node `index` leads it; nats-server 2.9 cannot name
   * the next leader, so this tries up to `attempts` elections. Says whether it got there.
   */
  async moveStreamLeader(stream: string, index: number, attempts = 8): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const leader = await this.streamLeader(stream);
      if (leader === index) return true;
      if (attempt === attempts) return false;
      await this.withConnection(async (nc) => {
        await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, undefined, { timeout: 2_000 });
      });
      // Until the old leader has let go, streamLeader would still name it.
      const deadline = Date.now() + 10_000;
      while ((await this.streamLeaderOrNull(stream)) === leader && Date.now() < deadline) await sleep(100);
    }
  }

  /**
   * Waits until every replica of a stream is current (a restarted node has caught up) and
   * returns the stream's last sequence as the leader reports it.
   */
  async waitForStreamCurrent(stream: string, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    return this.withConnection(async (nc) => {
      const jsm = await nc.jetstreamManager({ timeout: 2_000, checkAPI: false });
      for (;;) {
        const info = await jsm.streams.info(stream);
        const replicas = info.cluster?.replicas ?? [];
        const current = info.cluster?.leader !== undefined && replicas.every((r) => r.current && !r.offline);
        if (current && replicas.length + 1 === info.config.num_replicas) return info.state.last_seq;
        if (Date.now() > deadline) {
          throw new Error(`stream ${stream} replicas not current after ${timeoutMs} ms: ${JSON.stringify(info.cluster)}`);
        }
        await sleep(200);
      }
    });
  }

  /** Kills every node and removes the store directories. Safe to call more than once. */
  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.kill(i)));
    await this.root.remove();
  }

  /** The stream leader's index, or null while it has none (or its info does not answer). */
  private async streamLeaderOrNull(stream: string): Promise<number | null> {
    return this.withConnection(async (nc) => {
      const jsm = await nc.jetstreamManager({ timeout: 2_000, checkAPI: false });
      try {
        const leader = (await jsm.streams.info(stream)).cluster?.leader;
        const index = this.nodes.findIndex((n) => n.name === leader);
        return index >= 0 ? index : null;
      } catch (err) {
        // Between leaders the stream info request times out; anything else is a real failure.
        if ((err as { code?: unknown }).code === 'TIMEOUT') return null;
        throw err;
      }
    });
  }

  private node(index: number): NatsNode {
    const node = this.nodes[index];
    if (!node) throw new Error(`no node ${index} in a cluster of ${this.nodes.length}`);
    return node;
  }

  /** A short-lived client connection to whichever running nodes answer. */
  private async withConnection<T>(fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
    const servers = this.nodes.filter((_, i) => this.running(i)).map((n) => n.url);
    const nc = await connect({ servers, name: 'brook-test-cluster-admin', timeout: 2_000, maxReconnectAttempts: 10 });
    try {
      return await fn(nc);
    } finally {
      await nc.close();
    }
  }
}

/** Starts a cluster and waits until every node listens; cleans up after itself if a node fails to start. */
export async function setup(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const count = options.nodes ?? 3;
  const name = options.name ?? `brook-${randomBytes(3).toString('hex')}`;
  const root = await tempDir('brook-nats-cluster-');
  const nodes: NatsNode[] = [];
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (taken.has(p)) continue;
      taken.add(p);
      return p;
    }
  };
  for (let i = 0; i < count; i++) {
    const clientPort = await port();
    const clusterPort = await port();
    const monitorPort = await port();
    const storeDir = join(root.path, `n${i}`);
    await mkdir(storeDir);
    nodes.push({ name: `${name}-${i}`, port: clientPort, clusterPort, monitorPort, storeDir, url: `nats://127.0.0.1:${clientPort}` });
  }
  const cluster = new NatsCluster(name, nodes, root, options.readyTimeoutMs ?? 10_000);
  try {
    await Promise.all(nodes.map((_, i) => cluster.start(i)));
  } catch (err) {
    await cluster.cleanup();
    throw err;
  }
  return cluster;
}

/** Kills every node of the cluster and removes its directories. */
export async function cleanup(cluster: NatsCluster | undefined): Promise<void> {
  await cluster?.cleanup();
}
