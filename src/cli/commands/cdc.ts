import type { Writable } from 'node:stream';
import { HttpClient, seg, type Connection } from '../http-client.js';
import { formatTable, writeLine } from '../output.js';

interface SnapshotBody {
  readonly id: string;
  readonly mode: 'incremental' | 'blocking';
  readonly state: 'running' | 'interrupted' | 'complete' | 'failed';
  readonly table: string | null;
  readonly chunks: number;
  readonly rows: number;
  readonly tables: readonly { readonly table: string; readonly chunks: number; readonly rows: number; readonly done: boolean }[];
  readonly error: { readonly code: string; readonly message: string } | null;
}

interface SourceBody {
  readonly name: string;
  readonly state: string;
  readonly slot: string;
  readonly publication: string;
  readonly tables: readonly string[];
  readonly confirmed_lsn: string | null;
  readonly slot_lag_bytes: number | null;
  readonly last_error: { readonly code: string; readonly message: string } | null;
  readonly snapshot: SnapshotBody | null;
}

/** How often `cdc snapshot --wait` asks for progress. */
const POLL_MS = 500;

const dash = (v: string | number | null): string => (v === null ? '-' : String(v));

function snapshotSummary(s: SnapshotBody): string {
  const at = s.table === null ? '' : ` at ${s.table}`;
  return `${s.id} ${s.mode} ${s.state}${at}: ${s.rows} rows in ${s.chunks} chunks`;
}

/** Every source as a table, or one source in detail (`--json`: the server's answer). */
export async function cdcStatus(connection: Connection, source: string | undefined, options: { readonly json?: boolean | undefined }, out: Writable): Promise<void> {
  const http = new HttpClient(connection);
  if (source === undefined) {
    const { sources } = await http.get<{ sources: SourceBody[] }>('/v1/admin/cdc');
    if (options.json) {
      await writeLine(out, JSON.stringify(sources, null, 2));
      return;
    }
    if (sources.length === 0) {
      await writeLine(out, 'no CDC sources (brook start --cdc-url ..., or "cdc" in the config file)');
      return;
    }
    await writeLine(
      out,
      formatTable(
        ['SOURCE', 'STATE', 'SLOT', 'CONFIRMED-LSN', 'LAG-BYTES', 'SNAPSHOT', 'LAST-ERROR'],
        sources.map((s) => [
          s.name,
          s.state,
          s.slot,
          dash(s.confirmed_lsn),
          dash(s.slot_lag_bytes),
          s.snapshot === null ? '-' : `${s.snapshot.state} ${s.snapshot.rows} rows`,
          s.last_error?.code ?? '-',
        ]),
      ),
    );
    return;
  }
  const s = await http.get<SourceBody>(`/v1/admin/cdc/${seg(source)}`);
  if (options.json) {
    await writeLine(out, JSON.stringify(s, null, 2));
    return;
  }
  const lines = [
    `source ${s.name}  state ${s.state}`,
    `slot ${s.slot}  publication ${s.publication}`,
    `confirmed LSN ${dash(s.confirmed_lsn)}  slot lag ${dash(s.slot_lag_bytes)} bytes`,
    `tables ${s.tables.join(', ') || '-'}`,
    `last error ${s.last_error === null ? '-' : `${s.last_error.code}: ${s.last_error.message}`}`,
    `snapshot ${s.snapshot === null ? '-' : snapshotSummary(s.snapshot)}`,
  ];
  await writeLine(out, lines.join('\n'));
}

/**
 * Starts a snapshot of `tables` and prints its id; with `wait`, follows it until it completes
 * (a line per change of table) and rejects when it fails.
 */
export async function cdcSnapshot(
  connection: Connection,
  source: string,
  tables: readonly string[],
  options: { readonly mode: 'incremental' | 'blocking'; readonly wait?: boolean | undefined },
  out: Writable,
  signal?: AbortSignal,
): Promise<void> {
  const http = new HttpClient(connection);
  const started = await http.post<SnapshotBody>(`/v1/admin/cdc/${seg(source)}/snapshots`, { tables, mode: options.mode });
  await writeLine(out, `snapshot ${started.id} started (${started.mode}): ${tables.join(', ')}`);
  if (!options.wait) return;
  let table: string | null = started.table;
  for (;;) {
    if (signal?.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    let s: SnapshotBody;
    try {
      s = await http.get<SnapshotBody>(`/v1/admin/cdc/${seg(source)}/snapshots/${seg(started.id)}`, signal);
    } catch (err) {
      if (signal?.aborted) return; // Ctrl-C: the snapshot goes on in the server
      throw err;
    }
    if (s.state === 'complete') {
      await writeLine(out, `snapshot ${snapshotSummary(s)}`);
      return;
    }
    if (s.state === 'failed') throw new Error(`snapshot ${s.id} failed: ${s.error === null ? 'unknown error' : `${s.error.code}: ${s.error.message}`}`);
    if (s.table !== table && s.table !== null) await writeLine(out, `snapshot ${snapshotSummary(s)}`);
    table = s.table;
  }
}
