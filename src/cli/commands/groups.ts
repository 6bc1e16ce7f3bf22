import type { Writable } from 'node:stream';
import { HttpClient, seg, type Connection } from '../http-client.js';
import { formatTable, writeLine } from '../output.js';

interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}
interface GroupBody {
  readonly group: string;
  readonly generation: number;
  readonly strategy: string;
  readonly members: {
    readonly member_id: string;
    readonly client_id: string;
    readonly topics: string[];
    readonly assignment: TopicPartition[];
  }[];
  readonly offsets: (TopicPartition & { readonly offset: number; readonly high_watermark: number | null; readonly lag: number | null })[];
}

/** Where `groups reset` moves a group: the body's `to` in `POST /v1/groups/{group}/offsets/reset`. */
export type ResetTarget = 'earliest' | 'latest' | { readonly offset: number } | { readonly timestamp: number };

export async function listGroups(connection: Connection, out: Writable): Promise<void> {
  const { groups } = await new HttpClient(connection).get<{ groups: string[] }>('/v1/groups');
  for (const g of groups) await writeLine(out, g);
}

/**
 * The group's members with their assignment, then one row per partition the group has committed
 * or been assigned: committed offset, high watermark, lag (high watermark − committed offset) and
 * owner. `-` where there is nothing (assigned, never committed; or the topic is gone).
 */
export async function describeGroup(
  connection: Connection,
  group: string,
  options: { readonly json?: boolean | undefined },
  out: Writable,
): Promise<void> {
  const g = await new HttpClient(connection).get<GroupBody>(`/v1/groups/${seg(group)}`);
  if (options.json) {
    await writeLine(out, JSON.stringify(g, null, 2));
    return;
  }
  const lines = [`group ${g.group}  generation ${g.generation}  strategy ${g.strategy}  members ${g.members.length}`, ''];
  if (g.members.length > 0) {
    lines.push(
      formatTable(
        ['MEMBER', 'CLIENT', 'TOPICS', 'ASSIGNMENT'],
        g.members.map((m) => [
          m.member_id,
          m.client_id === '' ? '-' : m.client_id,
          m.topics.join(','),
          m.assignment.length === 0 ? '-' : m.assignment.map((a) => `${a.topic}/${a.partition}`).join(','),
        ]),
      ),
      '',
    );
  }

  const key = (tp: TopicPartition): string => `${tp.topic}\0${String(tp.partition).padStart(10, '0')}`;
  const owners = new Map<string, string>();
  for (const m of g.members) for (const a of m.assignment) owners.set(key(a), m.member_id);
  const rows = new Map<string, { tp: TopicPartition; offset?: GroupBody['offsets'][number] }>();
  for (const o of g.offsets) rows.set(key(o), { tp: o, offset: o });
  for (const m of g.members) for (const a of m.assignment) if (!rows.has(key(a))) rows.set(key(a), { tp: a });
  if (rows.size === 0) {
    lines.push('no committed offsets');
  } else {
    const dash = (n: number | null | undefined): string => (n === null || n === undefined ? '-' : String(n));
    lines.push(
      formatTable(
        ['TOPIC', 'PARTITION', 'COMMITTED', 'HIGH-WATERMARK', 'LAG', 'OWNER'],
        [...rows.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([k, { tp, offset }]) => [
            tp.topic,
            String(tp.partition),
            dash(offset?.offset),
            dash(offset?.high_watermark),
            dash(offset?.lag),
            owners.get(k) ?? '-',
          ]),
      ),
    );
  }
  await writeLine(out, lines.join('\n'));
}

/** Moves the group's offsets on `topic` (one partition or all) and prints where they now are. */
export async function resetGroup(
  connection: Connection,
  group: string,
  options: { readonly topic: string; readonly to: ResetTarget; readonly partition?: number | undefined },
  out: Writable,
): Promise<void> {
  const body = { topic: options.topic, to: options.to, ...(options.partition === undefined ? {} : { partition: options.partition }) };
  const { offsets } = await new HttpClient(connection).post<{ offsets: (TopicPartition & { offset: number })[] }>(
    `/v1/groups/${seg(group)}/offsets/reset`,
    body,
  );
  await writeLine(out, formatTable(['TOPIC', 'PARTITION', 'OFFSET'], offsets.map((o) => [o.topic, String(o.partition), String(o.offset)])));
}

/**
 * Parses `--to`: `earliest`, `latest`, `offset:N`, or `timestamp:T` where T is milliseconds
 * since the epoch or an ISO 8601 date. Returns undefined when `raw` is none of these.
 */
export function parseResetTarget(raw: string): ResetTarget | undefined {
  if (raw === 'earliest' || raw === 'latest') return raw;
  const colon = raw.indexOf(':');
  const kind = raw.slice(0, colon);
  const arg = raw.slice(colon + 1);
  if (colon <= 0 || arg === '') return undefined;
  if (kind === 'offset') return /^\d+$/.test(arg) && Number.isSafeInteger(Number(arg)) ? { offset: Number(arg) } : undefined;
  if (kind !== 'timestamp') return undefined;
  if (/^\d+$/.test(arg)) return Number.isSafeInteger(Number(arg)) ? { timestamp: Number(arg) } : undefined;
  const ms = Date.parse(arg);
  return Number.isNaN(ms) || ms < 0 ? undefined : { timestamp: ms };
}
