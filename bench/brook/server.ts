import { ChildServer } from '../lib/processes.js';
import { REPO_ROOT } from '../lib/paths.js';
import { BrookHttpClient } from './http-client.js';

/**
 * Starts `node <serverBin> start` (for bin/brook.js, dist/ must be built) on loopback and resolves when
 * `GET /healthz` answers 200, with the time from spawn to that answer. `BROOK_BENCH_SERVER_NODE_ARGS`
 * (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") passes node flags to the server, as in the cdc suite.
 */
export async function startBrookServer(
  serverBin: string,
  dataDir: string,
  port: number,
  client: BrookHttpClient,
): Promise<{ server: ChildServer; readyMs: number }> {
  return ChildServer.start({
    name: 'brook',
    command: process.execPath,
    args: [...serverNodeArgs(), serverBin, 'start', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir, '--log-level', 'warn'],
    cwd: REPO_ROOT,
    ready: () => client.healthy(),
    readyTimeoutMs: 120_000,
    pollMs: 2,
  });
}

export function serverNodeArgs(): string[] {
  return (process.env['BROOK_BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
}
