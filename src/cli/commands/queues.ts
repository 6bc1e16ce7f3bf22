import type { Writable } from 'node:stream';
import { ApiError, HttpClient, seg, type Connection } from '../http-client.js';
import { readLines } from '../line-reader.js';
import { formatTable, writeLine } from '../output.js';

interface QueueBody {
  readonly name: string;
  readonly depth: number;
  readonly ready: number;
  readonly in_flight: number;
  readonly delayed: number;
  readonly dead_letters: number;
  readonly oldest_age_ms: number;
  readonly deliveries: number;
  readonly redeliveries: number;
  readonly acked: number;
  readonly dead_lettered: number;
  readonly config: Record<string, unknown>;
}

interface DeadLetterBody {
  readonly id: string;
  readonly value: unknown;
  readonly deliveries: number;
  readonly last_error: string | null;
  readonly dead_lettered_at: number;
  readonly reason: string;
}

/** Which dead letters `redrive` takes: the body of `POST …/dead-letters/redrive`. */
export type RedriveSelection = { readonly all: true } | { readonly ids: readonly string[] } | { readonly older_than_ms: number };

const age = (ms: number): string => (ms < 1000 ? `${ms}ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`);

export async function listQueues(connection: Connection, out: Writable): Promise<void> {
  const { queues } = await new HttpClient(connection).get<{ queues: QueueBody[] }>('/v1/queues');
  if (queues.length === 0) {
    await writeLine(out, 'no queues');
    return;
  }
  await writeLine(
    out,
    formatTable(
      ['QUEUE', 'DEPTH', 'READY', 'IN-FLIGHT', 'DELAYED', 'DEAD', 'OLDEST'],
      queues.map((q) => [q.name, String(q.depth), String(q.ready), String(q.in_flight), String(q.delayed), String(q.dead_letters), age(q.oldest_age_ms)]),
    ),
  );
}

export async function describeQueue(connection: Connection, queue: string, options: { readonly json?: boolean | undefined }, out: Writable): Promise<void> {
  const q = await new HttpClient(connection).get<QueueBody>(`/v1/queues/${seg(queue)}`);
  if (options.json) {
    await writeLine(out, JSON.stringify(q, null, 2));
    return;
  }
  const rows: [string, string][] = [
    ['depth', String(q.depth)],
    ['ready', String(q.ready)],
    ['in flight', String(q.in_flight)],
    ['delayed', String(q.delayed)],
    ['dead letters', String(q.dead_letters)],
    ['oldest', age(q.oldest_age_ms)],
    ['deliveries', `${q.deliveries} (${q.redeliveries} redeliveries)`],
    ['acked', String(q.acked)],
    ['dead-lettered', String(q.dead_lettered)],
    ...Object.entries(q.config).map(([k, v]): [string, string] => [k, JSON.stringify(v)]),
  ];
  await writeLine(out, `queue ${q.name}\n\n${formatTable(['FIELD', 'VALUE'], rows)}`);
}

/** Enqueues JSON values (each line of input is one value); prints the ids. */
export async function enqueue(
  connection: Connection,
  queue: string,
  values: readonly unknown[],
  options: { readonly delayMs?: number | undefined; readonly priority?: number | undefined; readonly key?: string | undefined },
  out: Writable,
): Promise<void> {
  const messages = values.map((value) => ({
    value,
    ...(options.delayMs === undefined ? {} : { delay_ms: options.delayMs }),
    ...(options.priority === undefined ? {} : { priority: options.priority }),
    ...(options.key === undefined ? {} : { key: options.key }),
  }));
  const client = new HttpClient(connection);
  for (let i = 0; i < messages.length; i += 1000) {
    const { ids } = await client.post<{ ids: string[] }>(`/v1/queues/${seg(queue)}/messages`, { messages: messages.slice(i, i + 1000) });
    for (const id of ids) await writeLine(out, id);
  }
}

export async function listDeadLetters(
  connection: Connection,
  queue: string,
  options: { readonly limit?: number | undefined; readonly json?: boolean | undefined },
  out: Writable,
): Promise<void> {
  const limit = options.limit ?? 100;
  const { messages } = await new HttpClient(connection).get<{ messages: DeadLetterBody[] }>(`/v1/queues/${seg(queue)}/dead-letters?limit=${limit}`);
  if (options.json) {
    for (const m of messages) await writeLine(out, JSON.stringify(m));
    return;
  }
  if (messages.length === 0) {
    await writeLine(out, 'no dead letters');
    return;
  }
  await writeLine(
    out,
    formatTable(
      ['ID', 'REASON', 'DELIVERIES', 'DEAD-LETTERED', 'LAST-ERROR', 'VALUE'],
      messages.map((m) => [
        m.id,
        m.reason,
        String(m.deliveries),
        new Date(m.dead_lettered_at).toISOString(),
        (m.last_error ?? '-').slice(0, 60),
        JSON.stringify(m.value).slice(0, 60),
      ]),
    ),
  );
}

export async function redrive(connection: Connection, queue: string, selection: RedriveSelection, out: Writable): Promise<void> {
  const { ids } = await new HttpClient(connection).post<{ ids: string[] }>(`/v1/queues/${seg(queue)}/dead-letters/redrive`, selection);
  await writeLine(out, `redrove ${ids.length} dead letter${ids.length === 1 ? '' : 's'}`);
}

const MAX_LINE_BYTES = 1024 * 1024 + 1024;

/**
 * The values to enqueue: the arguments, or else one per line of `input`. Each is parsed as JSON;
 * text that is not JSON is enqueued as a JSON string.
 */
export async function enqueueValues(args: readonly string[], input: AsyncIterable<Buffer | string>): Promise<unknown[]> {
  const raw: string[] = [...args];
  if (raw.length === 0) for await (const line of readLines(input, MAX_LINE_BYTES)) if (line.trim() !== '') raw.push(line);
  if (raw.length === 0) throw new ApiError('INVALID_REQUEST', 0, 'nothing to enqueue: give values as arguments or one per line on stdin');
  return raw.map((text) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  });
}

/** Parses `--ids 1,2,3`, `--older-than 3600000` or `--all` into the redrive selection. */
export function redriveSelection(options: { readonly all?: boolean | undefined; readonly ids?: string | undefined; readonly olderThanMs?: number | undefined }): RedriveSelection {
  const given = [options.all === true, options.ids !== undefined, options.olderThanMs !== undefined].filter(Boolean).length;
  if (given !== 1) throw new ApiError('INVALID_REQUEST', 0, 'say which dead letters: exactly one of --all, --ids or --older-than-ms');
  if (options.all === true) return { all: true };
  if (options.ids !== undefined) return { ids: options.ids.split(',').map((id) => id.trim()).filter((id) => id !== '') };
  return { older_than_ms: options.olderThanMs! };
}
