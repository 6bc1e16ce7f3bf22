/**
 * CDC suite: PostgreSQL commit → subscriber latency at 1,000 and 10,000 row changes/s, and the
 * maximum sustained changes/s with 100-row transactions, side by side for
 *
 * - `brook-cdc`: a Brook server (child process, embedded engine, topics durable with fsync) running
 *   a CDC source, and a Brook SDK consumer of `cdc.public.<table>` over `/v1/ws` in the bench
 *   process (the SDK's streaming protocol). Latency includes the durable append in Brook.
 * - `brook-cdc-realtime`: the same server, and a browser-side subscriber: a raw `ws` client of
 *   `/v1/realtime` subscribed to the topic channel `topic:cdc.public.<table>` (issue 6's target).
 * - `brook-cdc-topic`: the CDC source and an embedded engine in the bench process, read back with
 *   waitForData/read once durable: commit → Brook topic, no network hop after Brook.
 * - `pg-logical-replication`: a bare `pg-logical-replication` pgoutput consumer of its own slot
 *   (no storage at all): the floor.
 * - `brook-decoder`: Brook's own replication connection + pgoutput decoder with no storage, to
 *   compare the two decoders on equal terms.
 *
 * Writers: 4 connections commit single autocommit `INSERT ... SELECT generate_series` statements
 * on a fixed timeline (lib/ticker.ts); latency = receive time − intended commit-statement time,
 * so a late writer counts against the system (coordinated omission safe). Each system gets its
 * own database, publication and slot, dropped afterwards.
 */
import pg from 'pg';
import WebSocket from 'ws';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import type { BrookClient, Consumer } from '../../src/client/index.js';
import { CdcSource, parseCdcSourceConfig } from '../../src/cdc/index.js';
import { decodePgoutput } from '../../src/cdc/pgoutput-decoder.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { pino } from 'pino';
import { ReplicationConnection } from '../../src/cdc/replication-connection.js';
import type { BenchOptions } from '../lib/args.js';
import { ChildServer, freePort, sleep } from '../lib/processes.js';
import { REPO_ROOT } from '../lib/paths.js';
import { fixed, int, ms } from '../lib/report.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import { nowMs, Ticker } from '../lib/ticker.js';
import { Latency, type LatencySummary } from '../lib/workload.js';
import { BrookHttpClient } from '../brook/http-client.js';
import { ClientErrors, sdkClient } from '../brook/sdk-client.js';
import { serverNodeArgs } from '../brook/server.js';

const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const TABLE = 'bench_cdc';
const WRITERS = 4;
const PAYLOAD = 'x'.repeat(64);
const DRAIN_MS = 15_000;

export type CdcSystemName = 'brook-cdc' | 'brook-cdc-realtime' | 'brook-cdc-topic' | 'pg-logical-replication' | 'brook-decoder';
const CDC_SYSTEMS: readonly CdcSystemName[] = ['brook-cdc', 'brook-cdc-realtime', 'brook-cdc-topic', 'pg-logical-replication', 'brook-decoder'];

export interface CdcLatencyRun {
  readonly system: CdcSystemName;
  readonly rate: number;
  readonly rowsPerTx: number;
  readonly changes: number;
  readonly received: number;
  readonly latency: LatencySummary;
  /** Where the time goes, for systems that can tell (brook-cdc-realtime: decoded → received). */
  readonly hops?: Record<string, LatencySummary>;
  readonly error?: string;
}

export interface CdcThroughputRun {
  readonly system: CdcSystemName;
  readonly rowsPerTx: number;
  readonly changes: number;
  readonly received: number;
  readonly seconds: number;
  readonly changesPerSec: number;
  readonly error?: string;
}

export interface CdcResult {
  readonly latencySeconds: number;
  readonly latency: CdcLatencyRun[];
  readonly throughput: CdcThroughputRun[];
}

/** A subscriber of row changes of TABLE: calls `onRow(tx)` for each inserted row; true = the row is measured. */
interface CdcSystem {
  readonly name: CdcSystemName;
  start(db: string, onRow: (tx: number) => boolean | void): Promise<void>;
  /** Per-hop latencies of the measured rows, when the system can tell (asked before stop). */
  hops?(): Promise<Record<string, LatencySummary>>;
  stop(): Promise<void>;
  readonly failures: string[];
}

const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function freshDatabase(name: string): Promise<void> {
  await dropDatabase(name);
  await admin(`CREATE DATABASE ${name}`);
  const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${name}` });
  await c.connect();
  await c.query(`CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, tx int NOT NULL, payload text NOT NULL)`);
  await c.end();
}

async function dropDatabase(name: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [name]);
    for (let i = 0; i < 50; i++) {
      try {
        await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [name]);
        break;
      } catch {
        await sleep(100); // a terminated walsender releases its slot a moment later
      }
    }
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

const dbUrl = (db: string): string => `postgres://postgres@127.0.0.1:5432/${db}`;

interface CdcServer {
  readonly port: number;
  readonly server: ChildServer;
  readonly http: BrookHttpClient;
  readonly dataDir: string;
}

/** A Brook server (child process) running a CDC source of TABLE; resolves once its topic exists. */
async function startCdcServer(options: BenchOptions, db: string, slot: string): Promise<CdcServer> {
  const port = await freePort();
  const dataDir = makeTempDir(options.dir, 'cdc');
  const http = new BrookHttpClient(port, 2);
  const args = [options.serverBin, 'start', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir, '--log-level', 'warn'];
  args.push('--cdc-url', dbUrl(db), '--cdc-tables', `public.${TABLE}`, '--cdc-slot', slot, '--cdc-publication', slot);
  const nodeArgs = serverNodeArgs();
  const { server } = await ChildServer.start({ name: 'brook', command: process.execPath, args: [...nodeArgs, ...args], cwd: REPO_ROOT, ready: () => http.healthy(), readyTimeoutMs: 60_000, pollMs: 5 });
  // The server answers /healthz while its CDC source still starts; the topic appears once it streams.
  const deadline = nowMs() + 60_000;
  while (!(await topicExists(http))) {
    if (nowMs() > deadline) {
      await server.stop();
      throw new Error(`cdc.public.${TABLE} did not appear within 60 s`);
    }
    await sleep(20);
  }
  return { port, server, http, dataDir };
}

async function topicExists(http: BrookHttpClient): Promise<boolean> {
  try {
    await http.expect('GET', `/v1/topics/cdc.public.${TABLE}`, [200]);
    return true;
  } catch {
    return false; // 404 until the source has created it
  }
}

/**
 * p50/p99/p99.9 of a Prometheus histogram in text format (all label sets summed) as the upper
 * bounds of the buckets they fall in; max is the bound of the highest bucket reached. Null when absent.
 */
export function histogramSummary(text: string, name: string): LatencySummary | null {
  const buckets = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\d+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const count = sorted.at(-1)?.[1] ?? 0;
  if (count === 0) return null;
  const at = (q: number): number => (sorted.find(([, n]) => n >= q * count)?.[0] ?? Infinity) * 1000;
  const reached = sorted.filter(([, n], i) => n > (i === 0 ? 0 : sorted[i - 1]![1]));
  return { count, p50Ms: at(0.5), p99Ms: at(0.99), p999Ms: at(0.999), maxMs: (reached.at(-1)?.[0] ?? Infinity) * 1000 };
}

/** The `tx` column of a CDC envelope's `after`, found without parsing the whole JSON: {"before":null,"after":{"id":"..","tx":N,... */
function txOf(text: string): number {
  const at = text.indexOf('"tx":');
  return at === -1 ? -1 : parseInt(text.slice(at + 5, at + 20), 10);
}

export class BrookCdc implements CdcSystem {
  readonly name = 'brook-cdc' as const;
  readonly failures: string[] = [];
  private server: ChildServer | null = null;
  private http: BrookHttpClient | null = null;
  private client: BrookClient | null = null;
  private consumer: Consumer<{ after: { tx: number } | null }> | null = null;
  private consuming: Promise<void> = Promise.resolve();
  private dataDir: string | null = null;
  private readonly errors = new ClientErrors();

  constructor(private readonly options: BenchOptions) {}

  async start(db: string, onRow: (tx: number) => void): Promise<void> {
    const started = await startCdcServer(this.options, db, 'brook_bench');
    ({ server: this.server, http: this.http, dataDir: this.dataDir } = started);
    const port = started.port;
    this.client = sdkClient(`http://127.0.0.1:${port}`, this.errors, { reconnect: false });
    await this.client.connect();
    const consumer = this.client.consumer<{ after: { tx: number } | null }>({ topic: `cdc.public.${TABLE}`, partition: 0, from: 'earliest' });
    this.consumer = consumer;
    await consumer.ready();
    this.consuming = (async () => {
      for await (const record of consumer) if (record.value.after) onRow(record.value.after.tx);
    })().catch((err: unknown) => {
      this.failures.push(errorText(err));
    });
  }

  async stop(): Promise<void> {
    try {
      await this.consumer?.close();
      await this.consuming;
      await this.client?.close();
      this.http?.close();
      await this.server?.stop();
    } finally {
      if (this.dataDir !== null) await removeTempDir(this.dataDir);
      this.server = null;
      this.client = null;
      this.consumer = null;
    }
    this.failures.push(...this.errors.seen);
  }
}

/**
 * Commit → browser-side subscriber: the same server as `brook-cdc`, and a raw `ws` client in the
 * bench process speaking the browser protocol of `/v1/realtime` (subprotocol brook.realtime.v1),
 * subscribed to the topic channel `topic:cdc.public.<table>`. What a browser's WebSocket receives,
 * frame for frame; the server pushes a record only once it is durable (fsync) in the topic.
 */
export class BrookCdcRealtime implements CdcSystem {
  readonly name = 'brook-cdc-realtime' as const;
  readonly failures: string[] = [];
  private server: ChildServer | null = null;
  private http: BrookHttpClient | null = null;
  private socket: WebSocket | null = null;
  private dataDir: string | null = null;
  private port: number | null = null;
  private stopping = false;

  constructor(private readonly options: BenchOptions) {}

  /**
   * Brook's decode time (the envelope's top-level `ts_ms`, Date.now() when the pipeline emitted the
   * row) → received here: server-side CDC append + fsync + tailer + fan-out + WebSocket, in whole ms.
   */
  private readonly afterDecode = new Latency();

  async hops(): Promise<Record<string, LatencySummary>> {
    const hops: Record<string, LatencySummary> = { 'decoded → received (1 ms resolution)': this.afterDecode.summary() };
    // The server's own histogram (docs/cdc.md, Metrics), warm-up included, bucket upper bounds.
    const metrics = this.port === null ? null : await fetch(`http://127.0.0.1:${this.port}/metrics`).then((r) => r.text()).catch(() => null);
    const received = metrics === null ? null : histogramSummary(metrics, 'brook_cdc_receive_to_durable_seconds');
    if (received !== null) hops['server: commit received → durable (histogram bucket bounds)'] = received;
    // Pauses of the server's event loop that every hop behind them waits for.
    const gc = metrics === null ? null : histogramSummary(metrics, 'nodejs_gc_duration_seconds');
    if (gc !== null) hops['server: garbage-collection pauses (histogram bucket bounds)'] = gc;
    return hops;
  }

  async start(db: string, onRow: (tx: number) => boolean | void): Promise<void> {
    const started = await startCdcServer(this.options, db, 'rt_bench');
    ({ server: this.server, http: this.http, dataDir: this.dataDir, port: this.port } = started);
    const socket = new WebSocket(`ws://127.0.0.1:${started.port}/v1/realtime`, 'brook.realtime.v1', { perMessageDeflate: false });
    this.socket = socket;
    const channel = `topic:cdc.public.${TABLE}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no subscribed reply for ${channel} within 10 s`)), 10_000);
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
        if (!this.stopping) this.failures.push(errorText(err));
      });
      socket.on('close', (code) => {
        clearTimeout(timer);
        reject(new Error(`realtime socket closed (${code}) before subscribing`));
        if (!this.stopping) this.failures.push(`realtime socket closed (${code})`);
      });
      socket.on('message', (raw: Buffer) => {
        const text = raw.toString('latin1');
        // Live `pub` frames: {"type":"pub","channel":"topic:…","data":{…},"offset":N}
        if (text.startsWith('{"type":"pub"')) {
          const tx = txOf(text);
          if (tx >= 0 && onRow(tx) === true) {
            const at = text.lastIndexOf('"ts_ms":');
            if (at !== -1) this.afterDecode.recordMs(Date.now() - parseInt(text.slice(at + 8, at + 24), 10));
          }
          return;
        }
        const frame = JSON.parse(text) as { type: string; results?: Array<{ error?: { code: string; message: string } }>; code?: string; message?: string };
        if (frame.type === 'welcome') {
          socket.send(JSON.stringify({ type: 'subscribe', id: 1, channels: [{ channel }] }));
        } else if (frame.type === 'subscribed') {
          clearTimeout(timer);
          const error = frame.results?.[0]?.error;
          if (error) reject(new Error(`subscribe ${channel}: ${error.code}: ${error.message}`));
          else resolve();
        } else if (frame.type === 'error' || frame.type === 'unsub' || frame.type === 'skipped') {
          this.failures.push(`${frame.type}: ${frame.code ?? ''} ${frame.message ?? ''}`);
        }
      });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    try {
      if (this.socket && this.socket.readyState !== WebSocket.CLOSED) {
        const closed = new Promise<void>((resolve) => this.socket!.once('close', () => resolve()));
        this.socket.close();
        await Promise.race([closed, sleep(2000)]);
      }
      this.http?.close();
      await this.server?.stop();
    } finally {
      if (this.dataDir !== null) await removeTempDir(this.dataDir);
      this.server = null;
      this.socket = null;
    }
  }
}

/**
 * Commit → Brook topic: the CDC source and an embedded engine in the bench process, and a reader
 * that waits on the engine (waitForData) and reads what became durable. No network hop after
 * Brook, so this is the CDC path alone.
 */
export class BrookCdcTopic implements CdcSystem {
  readonly name = 'brook-cdc-topic' as const;
  readonly failures: string[] = [];
  private engine: EmbeddedEngine | null = null;
  private source: CdcSource | null = null;
  private dataDir: string | null = null;
  private reading: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();

  constructor(private readonly options: BenchOptions) {}

  async start(db: string, onRow: (tx: number) => void): Promise<void> {
    this.dataDir = makeTempDir(this.options.dir, 'cdc-topic');
    const engine = new EmbeddedEngine({ dataDir: this.dataDir });
    this.engine = engine;
    await engine.open();
    const config = parseCdcSourceConfig({ url: dbUrl(db), tables: [`public.${TABLE}`], slot: 'topic_bench', publication: 'topic_bench' });
    this.source = new CdcSource({ config, engine, logger: pino({ level: 'warn' }) });
    await this.source.start();
    const topic = `cdc.public.${TABLE}`;
    const signal = this.abort.signal;
    this.reading = (async () => {
      let offset = 0;
      while (!signal.aborted) {
        if (!(await engine.waitForData(topic, 0, offset, { timeoutMs: 1000, signal }))) continue;
        const r = await engine.read(topic, 0, offset, { maxRecords: 5000 });
        for (const rec of r.records) {
          // The value is JSON; the tx number is the only field needed: {"before":null,"after":{"id":"..","tx":N,...
          const tx = txOf(Buffer.from(rec.value!.buffer, rec.value!.byteOffset, rec.value!.byteLength).toString('latin1'));
          if (tx >= 0) onRow(tx);
        }
        offset = r.nextOffset;
      }
    })().catch((err: unknown) => {
      if (!signal.aborted) this.failures.push(errorText(err));
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.reading;
    await this.source?.stop();
    await this.engine?.close();
    if (this.dataDir !== null) await removeTempDir(this.dataDir);
  }
}

export class PgLogicalReplication implements CdcSystem {
  readonly name = 'pg-logical-replication' as const;
  readonly failures: string[] = [];
  private service: LogicalReplicationService | null = null;

  async start(db: string, onRow: (tx: number) => void): Promise<void> {
    const c = new pg.Client({ connectionString: dbUrl(db) });
    await c.connect();
    await c.query(`CREATE PUBLICATION plr_bench FOR TABLE ${TABLE}`);
    await c.query(`SELECT pg_create_logical_replication_slot('plr_bench', 'pgoutput')`);
    await c.end();
    const service = new LogicalReplicationService({ connectionString: dbUrl(db) }, { acknowledge: { auto: true, timeoutSeconds: 10 } });
    this.service = service;
    service.on('data', (_lsn: string, msg: { tag: string; new?: { tx: number } }) => {
      if (msg.tag === 'insert' && msg.new) onRow(msg.new.tx);
    });
    service.on('error', (err: unknown) => this.failures.push(errorText(err)));
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['plr_bench'] });
    void service.subscribe(plugin, 'plr_bench').catch((err: unknown) => this.failures.push(errorText(err)));
    await new Promise<void>((resolve) => service.once('start', () => resolve()));
  }

  async stop(): Promise<void> {
    await this.service?.destroy();
    this.service = null;
  }
}

export class BrookDecoder implements CdcSystem {
  readonly name = 'brook-decoder' as const;
  readonly failures: string[] = [];
  private connection: ReplicationConnection | null = null;
  private streaming: Promise<void> = Promise.resolve();

  async start(db: string, onRow: (tx: number) => void): Promise<void> {
    const c = new pg.Client({ connectionString: dbUrl(db) });
    await c.connect();
    await c.query(`CREATE PUBLICATION dec_bench FOR TABLE ${TABLE}`);
    await c.query(`SELECT pg_create_logical_replication_slot('dec_bench', 'pgoutput')`);
    await c.end();
    const connection = new ReplicationConnection(dbUrl(db), 'dec_bench');
    this.connection = connection;
    await connection.connect();
    let txColumn = 1;
    let last = 0n;
    this.streaming = connection
      .stream('dec_bench', {
        onData: (buf, offset) => {
          const m = decodePgoutput(buf, offset);
          if (m.tag === 'relation') txColumn = m.columns.findIndex((col) => col.name === 'tx');
          else if (m.tag === 'insert') onRow(Number(m.after[txColumn]));
          else if (m.tag === 'commit') last = m.endLsn;
        },
        onKeepalive: (walEnd, reply) => {
          if (reply) connection.sendStatus(last > 0n ? last : walEnd);
        },
      })
      .catch((err: unknown) => {
        this.failures.push(errorText(err));
      });
    await sleep(200); // START_REPLICATION has no reply to wait for before the first data
  }

  async stop(): Promise<void> {
    await this.connection?.close();
    await this.streaming;
    this.connection = null;
  }
}

/** Commits `rowsPerTx`-row transactions through WRITERS connections, round-robin. */
class Writers {
  private clients: pg.Client[] = [];
  /** Per connection, the statement queued last: pg wants one query at a time per client. */
  private tails: Promise<unknown>[] = [];
  private next = 0;
  inFlight = 0;
  readonly failures: string[] = [];

  async open(db: string): Promise<void> {
    for (let i = 0; i < WRITERS; i++) {
      const c = new pg.Client({ connectionString: dbUrl(db) });
      c.on('error', (err) => this.failures.push(errorText(err)));
      await c.connect();
      this.clients.push(c);
      this.tails.push(Promise.resolve());
    }
  }

  commit(tx: number, rowsPerTx: number, idBase: number): Promise<void> {
    const i = this.next++ % this.clients.length;
    const c = this.clients[i]!;
    const first = idBase + tx * rowsPerTx;
    this.inFlight++;
    const sql = `INSERT INTO ${TABLE} (id, tx, payload) SELECT g, $1, $2 FROM generate_series($3::bigint, $4::bigint) g`;
    const done = this.tails[i]!.then(() => c.query(sql, [tx, PAYLOAD, first, first + rowsPerTx - 1]));
    this.tails[i] = done.catch(() => undefined);
    return done.then(
        () => {
          this.inFlight--;
        },
        (err: unknown) => {
          this.inFlight--;
          if (this.failures.length < 5) this.failures.push(errorText(err));
        },
      );
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.end().catch(() => undefined)));
    this.clients = [];
  }
}

export async function latencyRun(system: CdcSystem, rate: number, seconds: number): Promise<CdcLatencyRun> {
  const rowsPerTx = Math.max(1, Math.round(rate / 1000));
  const txRate = rate / rowsPerTx;
  const warmTx = Math.round(txRate);
  const total = warmTx + Math.round(txRate * seconds);
  const measuredChanges = (total - warmTx) * rowsPerTx;
  const db = `brook_bench_cdc_${process.pid}`;
  const latency = new Latency();
  let received = 0;
  let ticker: Ticker | null = null;
  const writers = new Writers();
  const base = { system: system.name, rate, rowsPerTx, changes: measuredChanges };
  try {
    await freshDatabase(db);
    await system.start(db, (tx) => {
      const at = nowMs();
      if (ticker === null || tx < warmTx || tx >= total) return false;
      received++;
      latency.recordMs(at - ticker.intended(tx));
      return true;
    });
    await writers.open(db);
    const t = new Ticker(nowMs() + 50, txRate, total);
    ticker = t;
    await t.run(
      (tx) => void writers.commit(tx, rowsPerTx, 0),
      () => (writers.failures[0] ?? system.failures[0] ?? (writers.inFlight > txRate * 10 ? 'writers more than 10 s behind' : null)),
    );
    const end = nowMs() + DRAIN_MS;
    while (received < measuredChanges && nowMs() < end && system.failures.length === 0) await sleep(5);
    const problems = [...(received < measuredChanges ? [`${int(measuredChanges - received)} of ${int(measuredChanges)} changes not received`] : []), ...writers.failures, ...system.failures];
    return { ...base, received, latency: latency.summary(), ...(system.hops ? { hops: await system.hops() } : {}), ...(problems.length > 0 ? { error: problems.join('; ') } : {}) };
  } catch (err) {
    return { ...base, received, latency: latency.summary(), error: errorText(err) };
  } finally {
    ticker?.stop();
    await writers.close();
    await system.stop().catch((err: unknown) => progress(`  ${system.name}: stop failed: ${errorText(err)}`));
    await dropDatabase(db).catch((err: unknown) => progress(`  could not drop ${db}: ${errorText(err)}`));
  }
}

export async function throughputRun(system: CdcSystem, changes: number): Promise<CdcThroughputRun> {
  const rowsPerTx = 100;
  const txs = Math.ceil(changes / rowsPerTx);
  const total = txs * rowsPerTx;
  const db = `brook_bench_cdc_${process.pid}`;
  let received = 0;
  let lastAt = 0;
  const writers = new Writers();
  const base = { system: system.name, rowsPerTx, changes: total };
  try {
    await freshDatabase(db);
    await system.start(db, () => {
      received++;
      lastAt = nowMs();
    });
    await writers.open(db);
    const started = nowMs();
    // As fast as the writers go: each connection always has one statement queued behind the running one.
    let nextTx = 0;
    await Promise.all(
      Array.from({ length: WRITERS }, async () => {
        while (nextTx < txs && writers.failures.length === 0) await writers.commit(nextTx++, rowsPerTx, 0);
      }),
    );
    const end = nowMs() + DRAIN_MS * 4;
    while (received < total && nowMs() < end && system.failures.length === 0) await sleep(5);
    const seconds = ((received < total ? nowMs() : lastAt) - started) / 1000;
    const problems = [...(received < total ? [`${int(total - received)} of ${int(total)} changes not received`] : []), ...writers.failures, ...system.failures];
    return { ...base, received, seconds, changesPerSec: received / seconds, ...(problems.length > 0 ? { error: problems.join('; ') } : {}) };
  } catch (err) {
    return { ...base, received, seconds: 0, changesPerSec: 0, error: errorText(err) };
  } finally {
    await writers.close();
    await system.stop().catch((err: unknown) => progress(`  ${system.name}: stop failed: ${errorText(err)}`));
    await dropDatabase(db).catch((err: unknown) => progress(`  could not drop ${db}: ${errorText(err)}`));
  }
}

export async function runCdc(options: BenchOptions): Promise<CdcResult> {
  const seconds = options.quick ? 5 : 15;
  const changes = options.quick ? 200_000 : 1_000_000;
  // BROOK_BENCH_CDC_SYSTEMS=brook-cdc-realtime,pg-logical-replication runs only those systems.
  const wanted = (process.env['BROOK_BENCH_CDC_SYSTEMS'] ?? CDC_SYSTEMS.join(',')).split(',');
  const unknown = wanted.filter((n) => !CDC_SYSTEMS.includes(n as CdcSystemName));
  if (unknown.length > 0) throw new Error(`BROOK_BENCH_CDC_SYSTEMS: unknown system ${unknown.join(', ')} (known: ${CDC_SYSTEMS.join(', ')})`);
  const all = (): CdcSystem[] => [new BrookCdc(options), new BrookCdcRealtime(options), new BrookCdcTopic(options), new PgLogicalReplication(), new BrookDecoder()];
  const make = (): CdcSystem[] => all().filter((system) => wanted.includes(system.name));
  const latency: CdcLatencyRun[] = [];
  for (const rate of [1_000, 10_000]) {
    progress(`cdc: commit → subscriber at ${int(rate)} changes/s for ${seconds} s (+1 s warm-up)`);
    for (const system of make()) {
      const run = await latencyRun(system, rate, seconds);
      latency.push(run);
      const l = run.latency;
      progress(`  ${system.name.padEnd(24)} p50 ${ms(l.p50Ms)} ms  p99 ${ms(l.p99Ms)} ms  p99.9 ${ms(l.p999Ms)} ms  max ${ms(l.maxMs)} ms${run.error === undefined ? '' : `  FAILED: ${run.error}`}`);
      for (const [hop, h] of Object.entries(run.hops ?? {})) progress(`    ${hop}: p50 ${ms(h.p50Ms)} ms  p99 ${ms(h.p99Ms)} ms  max ${ms(h.maxMs)} ms`);
    }
  }
  const throughput: CdcThroughputRun[] = [];
  progress(`cdc: ${int(changes)} changes in 100-row transactions, as fast as ${WRITERS} writers go`);
  // Not brook-cdc-realtime: one WebSocket subscriber at the writers' full rate (60k+ messages/s)
  // passes the default slow-client bound (1,000 queued messages) on this machine and is closed
  // with 4004, by design; the throughput target is "durable in Brook" (brook-cdc-topic).
  for (const system of make().filter((s) => s.name !== 'brook-cdc-realtime')) {
    const run = await throughputRun(system, changes);
    throughput.push(run);
    progress(`  ${system.name.padEnd(24)} ${int(run.changesPerSec)} changes/s (${fixed(run.seconds, 2)} s)${run.error === undefined ? '' : `  FAILED: ${run.error}`}`);
  }
  return { latencySeconds: seconds, latency, throughput };
}
