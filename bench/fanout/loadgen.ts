/**
 * The fan-out load generator, a child process of its own (`node --import tsx
 * bench/fanout/loadgen.ts`, driven over IPC). It speaks just enough WebSocket on raw TCP sockets
 * to count frames without decoding them: per chunk it walks frame headers and skips payloads,
 * so it is not the bottleneck. Latency is sampled on a subset of connections by reading a
 * timestamp at the `@T` marker in the payload (no JSON parsing).
 *
 * ```
 * suite ──IPC──▶ loadgen: connect N subscribers (raw WS) ──TCP──▶ server (child process)
 *                         publisher connection: "as fast as accepted", at most `window`
 *                         messages per subscriber not yet delivered
 * ```
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ConnectCommand {
  readonly cmd: 'connect';
  readonly port: number;
  readonly count: number;
  /** Request path with query; `{i}` = the connection's index. */
  readonly path: string;
  readonly protocol?: string;
  /** Text frame each connection sends right after the handshake (subscribe, socket.io connect); `{i}` = its index. */
  readonly hello?: string;
  /** Frames a connection receives before it counts as subscribed. */
  readonly readyFrames: number;
  /** Source addresses to spread connections over (port exhaustion past ~28k per address). */
  readonly sourceAddresses: readonly string[];
  /** Sample latency on this many connections. */
  readonly sampled: number;
}

export interface RunCommand {
  readonly cmd: 'run';
  readonly port: number;
  readonly seconds: number;
  /** Messages in flight per recipient (a shared channel) or in all (one channel per connection). */
  readonly window: number;
  /**
   * `shared`: every message goes to every subscriber. `own`: message n goes to connection
   * n mod N only (`{i}` in the publish prefix is replaced by n mod N).
   */
  readonly mode: 'shared' | 'own';
  readonly publisherPath: string;
  readonly publisherProtocol?: string;
  readonly publisherHello?: string;
  /** How a published frame is built around the payload: `<prefix>"<payload>"<suffix>`, `{seq}` replaced. */
  readonly publishPrefix: string;
  readonly publishSuffix: string;
  readonly payloadBytes: number;
}

export interface ConnectResult {
  readonly connected: number;
  readonly failed: number;
  readonly firstError: string | null;
  readonly ms: number;
}

export interface RunResult {
  readonly published: number;
  readonly delivered: number;
  readonly seconds: number;
  readonly deliveredPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly samples: number;
  /** The generator's own CPU during the run, in % of one core. */
  readonly cpuPercent: number;
  readonly closedDuringRun: number;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const MARKER = Buffer.from('@T');

/** A client text frame, masked with a zero key (valid per RFC 6455 and free to "mask"). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const n = payload.length;
  const header = n < 126 ? 6 : n < 65_536 ? 8 : 14;
  const frame = Buffer.alloc(header + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(n, 6);
  }
  payload.copy(frame, header);
  return frame;
}

const SOCKETIO_PONG = clientFrame('3');

class Conn {
  frames = 0;
  closed = false;
  /** Payload bytes still to skip. */
  private skip = 0;
  private carry: Buffer | null = null;
  private handshaken = false;

  constructor(
    readonly socket: Socket,
    private readonly sampled: boolean,
    private readonly onFrame: (c: Conn) => void,
    private readonly onSample: (ms: number) => void,
  ) {}

  data(chunk: Buffer): void {
    let buf = chunk;
    if (this.carry !== null) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = null;
    }
    let pos = 0;
    if (!this.handshaken) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        this.carry = buf;
        return;
      }
      if (buf.toString('latin1', 0, 12) !== 'HTTP/1.1 101') {
        this.socket.destroy(new Error(`handshake refused: ${buf.toString('latin1', 0, Math.min(end, 200))}`));
        return;
      }
      this.handshaken = true;
      this.socket.emit('handshake');
      pos = end + 4;
    }
    const n = buf.length;
    while (pos < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - pos);
        this.skip -= take;
        pos += take;
        continue;
      }
      if (n - pos < 2) break;
      const b1 = buf[pos + 1]! & 0x7f;
      let len = b1;
      let header = 2;
      if (b1 === 126) {
        if (n - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        header = 4;
      } else if (b1 === 127) {
        if (n - pos < 10) break;
        len = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
        header = 10;
      }
      const opcode = buf[pos]! & 0x0f;
      const start = pos + header;
      if (opcode === 0x8) {
        this.closed = true;
        this.socket.destroy();
        return;
      }
      if (opcode === 0x9) {
        // Ping: answer with a pong carrying nothing (enough for our servers' liveness checks).
        this.socket.write(Buffer.from([0x8a, 0x80, 0, 0, 0, 0]));
      } else if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        if (len === 1 && start < n && buf[start] === 0x32) {
          this.socket.write(SOCKETIO_PONG); // engine.io ping "2"
        } else {
          this.frames++;
          this.onFrame(this);
          if (this.sampled && start + Math.min(len, 96) <= n) this.sample(buf, start, Math.min(len, 96));
        }
      }
      pos = start;
      this.skip = len;
    }
    if (pos < n && this.skip === 0) this.carry = Buffer.from(buf.subarray(pos));
  }

  private sample(buf: Buffer, start: number, len: number): void {
    const at = buf.indexOf(MARKER, start);
    if (at === -1 || at + 18 > start + len) return;
    const sentUs = Number(buf.toString('latin1', at + 2, at + 18));
    this.onSample(performance.now() - sentUs / 1000);
  }
}

let conns: Conn[] = [];
const noop = (): void => undefined;
/** Set while a run publishes: called on every delivered frame to refill the window. */
let schedulePump: () => void = noop;
let delivered = 0;
let counting = false;
let samples: number[] = [];
const MAX_SAMPLES = 2_000_000;
const WARMUP_MS = 1_000;

function openConn(port: number, path: string, protocol: string | undefined, hello: string | undefined, localAddress: string | undefined, sampled: boolean, onFrame: (c: Conn) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ port, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) });
    socket.setNoDelay(true);
    const conn = new Conn(socket, sampled, onFrame, (ms) => {
      if (counting && samples.length < MAX_SAMPLES) samples.push(ms);
    });
    socket.once('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${protocol === undefined ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`}\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => conn.data(chunk));
    socket.once('handshake', () => {
      if (hello !== undefined) socket.write(clientFrame(hello));
      resolve(conn);
    });
    socket.on('error', (err) => {
      conn.closed = true;
      reject(err);
    });
    socket.on('close', () => {
      conn.closed = true;
      reject(new Error('closed before the handshake'));
    });
  });
}

async function connectAll(c: ConnectCommand): Promise<ConnectResult> {
  const started = performance.now();
  let failed = 0;
  let firstError: string | null = null;
  let ready = 0;
  const onFrame = (conn: Conn): void => {
    if (counting) {
      delivered++;
      schedulePump();
    } else if (conn.frames === c.readyFrames) ready++;
  };
  const concurrency = 256;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < c.count) {
      const i = next++;
      const local = c.sourceAddresses.length === 0 ? undefined : c.sourceAddresses[i % c.sourceAddresses.length];
      try {
        const index = String(i);
        conns.push(await openConn(c.port, c.path.replace('{i}', index), c.protocol, c.hello?.replace('{i}', index), local, i < c.sampled, onFrame));
        if (c.readyFrames === 0) ready++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const deadline = performance.now() + 60_000;
  while (ready < c.count - failed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { connected: ready, failed, firstError, ms: performance.now() - started };
}

async function run(r: RunCommand): Promise<RunResult> {
  const subscribers = conns.length;
  // Deliveries allowed in flight: `window` per subscriber for a shared channel, `window` in all otherwise.
  const recipients = r.mode === 'shared' ? subscribers : 1;
  const maxInFlight = r.mode === 'shared' ? r.window * subscribers : r.window;
  let acks = 0;
  const publisher = await openConn(r.port, r.publisherPath, r.publisherProtocol, r.publisherHello, undefined, false, () => acks++);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const pad = 'x'.repeat(Math.max(0, r.payloadBytes - 18));
  try {
  let published = 0;
  const room = (): boolean => published * recipients - delivered < maxInFlight;
  delivered = 0;
  samples = [];
  counting = true;
  // The pump runs when there is room (started by deliveries), never as a spin loop: the
  // generator's CPU is what counting frames costs, and the server keeps the cores it needs.
  let running = true;
  let scheduled = false;
  const pump = (): void => {
    scheduled = false;
    if (!running) return;
    let budget = 256;
    while (budget-- > 0 && room()) {
      const ts = String(Math.floor(performance.now() * 1000)).padStart(16, '0');
      const prefix = r.publishPrefix.replace('{seq}', String(published)).replace('{i}', String(published % subscribers));
      const frame = `${prefix}"@T${ts}${pad}"${r.publishSuffix}`;
      publisher.socket.write(clientFrame(frame));
      published++;
    }
    if (budget < 0) schedulePump();
  };
  schedulePump = (): void => {
    if (scheduled || !running || !room()) return;
    scheduled = true;
    setImmediate(pump);
  };
  pump();
  // A warm-up second (connections settle, JIT) is published but not measured.
  await new Promise<void>((resolve) => setTimeout(resolve, WARMUP_MS));
  process.send?.({ measuring: true });
  const deliveredBefore = delivered;
  const publishedBefore = published;
  samples = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve) => setTimeout(resolve, r.seconds * 1000));
  const measured = delivered - deliveredBefore;
  process.send?.({ measured: true });
  running = false;
  schedulePump = noop;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sorted = samples;
  samples = [];
  sorted.sort((a, b) => a - b);
  const q = (p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!);
  // Let what is still in flight arrive, so the next run on these connections starts clean.
  const settleUntil = performance.now() + 5_000;
  while (published * recipients > delivered && performance.now() < settleUntil) await new Promise((resolve) => setTimeout(resolve, 20));
  return {
    published: published - publishedBefore,
    delivered: measured,
    seconds,
    deliveredPerSec: measured / seconds,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: sorted.at(-1) ?? 0,
    samples: sorted.length,
    cpuPercent: ((cpu.user + cpu.system) / 1000 / (seconds * 1000)) * 100,
    closedDuringRun: conns.filter((c) => c.closed).length,
  };
  } finally {
    counting = false;
    publisher.socket.destroy();
  }
}

process.on('message', (m: ConnectCommand | RunCommand | { cmd: 'close' }) => {
  const reply = (v: unknown): void => void process.send?.(v);
  if (m.cmd === 'connect') void connectAll(m).then(reply);
  else if (m.cmd === 'run') void run(m).then(reply, (err: unknown) => reply({ error: String(err) }));
  else {
    for (const c of conns) c.socket.destroy();
    conns = [];
    reply({ closed: true });
  }
});
process.send?.({ ready: true });
