/** Spawns the CLI as a real process (TypeScript sources through tsx), with bounded waits. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./fixtures/brook.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Everything printed so far. */
  stdout(): string;
  /** Resolves when stdout holds a line matching `pattern`. */
  waitForLine(pattern: RegExp): Promise<string>;
  /** Resolves when the process exits; kills it after `timeoutMs`. */
  exited(timeoutMs?: number): Promise<CliResult>;
}

export function startCli(args: readonly string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: 'pipe',
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exit = new Promise<CliResult>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    stdout: () => stdout,
    waitForLine(pattern) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const line = stdout.split('\n').find((l) => pattern.test(l));
          if (line === undefined) return false;
          child.stdout.off('data', onData);
          resolve(line);
          return true;
        };
        const onData = (): void => void check();
        if (check()) return;
        child.stdout.on('data', onData);
        void exit.then((r) => reject(new Error(`exited (${r.code}) before printing ${pattern}: ${r.stderr}`)));
      });
    },
    async exited(timeoutMs = 30_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exit;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Runs the CLI to completion with `stdin` as its input; `env` is added to the test's environment. */
export async function runCli(args: readonly string[], stdin = '', timeoutMs = 30_000, env: Record<string, string> = {}): Promise<CliResult> {
  const cli = startCli(args, env);
  cli.child.stdin.end(stdin);
  return cli.exited(timeoutMs);
}
