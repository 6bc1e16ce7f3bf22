import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./fixtures/cdc-child.ts', import.meta.url));

export interface RunningChild {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): Promise<number>;
  kill9(): Promise<void>;
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<number | null>;
}

/** Starts a Brook child running one CDC source; resolves once it streams. */
export async function startChild(
  dataDir: string,
  source: Record<string, unknown>,
  nodeFlags: readonly string[] = [],
  waitUntilReady = true,
): Promise<RunningChild> {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', CHILD, JSON.stringify({ dataDir, source })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`CDC child did not start: ${stderr}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(timer);
        resolve();
      } else if (out.includes('FAILED')) {
        clearTimeout(timer);
        reject(new Error(`CDC child failed: ${out} ${stderr}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CDC child exited with ${code}: ${stderr}`));
    });
  });
  if (waitUntilReady) await ready;
  else ready.catch(() => undefined); // the caller kills it before it is ready
  return {
    process: child,
    pid: child.pid!,
    async peakRss() {
      const { readFile } = await import('node:fs/promises');
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
