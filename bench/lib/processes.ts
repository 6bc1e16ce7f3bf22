import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';

/** Every child started by the bench; all are killed when the bench exits, however it exits. */
const live = new Set<ChildServer>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.killNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const child of live) child.killNow();
      process.exit(130);
    });
  }
}

/** A free TCP port on loopback (bound, read, released; the caller binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

export function isPortOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Bounded tail of a child's output, for error messages. */
class OutputTail {
  private text = '';
  constructor(private readonly limit = 16_384) {}
  push(chunk: Buffer): void {
    this.text += chunk.toString('utf8');
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.trim();
  }
}

export interface StartOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  /** Resolves true once the server answers; polled until `readyTimeoutMs`. */
  readonly ready: () => Promise<boolean>;
  /** @defaultValue 15_000 */
  readonly readyTimeoutMs?: number;
  /** Poll interval for `ready`. @defaultValue 5 */
  readonly pollMs?: number;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A server process the bench owns. A small watchdog shell kills it should the bench itself die
 * without running its exit hooks (kill -9, OOM), so no server outlives a run.
 */
export class ChildServer {
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private readonly output = new OutputTail();
  private readonly watchdog: ChildProcess | null;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        this.watchdog?.kill('SIGKILL');
        resolve(this.exitInfo);
      });
    });
    child.stdout?.on('data', (chunk: Buffer) => this.output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.output.push(chunk));
    this.watchdog =
      child.pid === undefined
        ? null
        : spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`], {
            stdio: 'ignore',
            detached: true,
          });
    this.watchdog?.unref();
  }

  /**
   * Spawns and waits until `ready` answers true. Resolves with the server and the time from
   * spawn to ready; a server that exits or does not get ready in time is killed and reported.
   */
  static async start(options: StartOptions): Promise<{ server: ChildServer; readyMs: number }> {
    installExitHooks();
    const started = performance.now();
    const child = spawn(options.command, [...options.args], {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ChildServer(options.name, child);
    live.add(server);
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined); // observed through the race below
    const deadline = started + (options.readyTimeoutMs ?? 15_000);
    try {
      for (;;) {
        if (server.exitInfo !== null) {
          throw new Error(`exited (${server.exitInfo.code ?? server.exitInfo.signal}) before it was ready`);
        }
        if (await Promise.race([options.ready(), spawnError])) break;
        if (performance.now() > deadline) throw new Error(`not ready after ${options.readyTimeoutMs ?? 15_000} ms`);
        await sleep(options.pollMs ?? 5);
      }
    } catch (err) {
      server.killNow();
      await server.exited;
      const tail = server.output.toString().split('\n').slice(-12).join('\n');
      throw new Error(`${options.name}: ${(err as Error).message}${tail === '' ? '' : `\n--- last output ---\n${tail}`}`, {
        cause: err,
      });
    }
    return { server, readyMs: performance.now() - started };
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === null;
  }

  outputTail(): string {
    return this.output.toString();
  }

  /** SIGKILL, synchronously; safe from an exit hook. */
  killNow(): void {
    if (this.exitInfo === null) this.child.kill('SIGKILL');
  }

  /** Sends `signal`, waits for exit (SIGKILL after `timeoutMs`), and says how long it took. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<ExitInfo & { ms: number; forced: boolean }> {
    const started = performance.now();
    if (this.exitInfo !== null) return { ...this.exitInfo, ms: 0, forced: false };
    this.child.kill(signal);
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.child.kill('SIGKILL');
    }, timeoutMs);
    const info = await this.exited;
    clearTimeout(timer);
    return { ...info, ms: performance.now() - started, forced };
  }
}
