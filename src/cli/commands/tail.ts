import type { Writable } from 'node:stream';
import { HttpClient, type Connection } from '../http-client.js';
import { writeLine } from '../output.js';
import { readTopic, type TopicRecord } from '../record-reader.js';

export interface TailOptions extends Connection {
  readonly partition?: number | undefined;
  readonly fromBeginning?: boolean | undefined;
  readonly max?: number | undefined;
}

/**
 * Follows a topic for people: one block per record, from the latest offset of every partition
 * (or the earliest with `fromBeginning`) until `max` records or `signal` aborts.
 */
export async function tail(topic: string, options: TailOptions, out: Writable, signal: AbortSignal): Promise<void> {
  const read = { partition: options.partition, fromBeginning: options.fromBeginning, max: options.max, follow: true };
  await readTopic(new HttpClient(options), topic, read, (r) => writeLine(out, formatRecord(r)), signal);
}

/**
 * One record as a block ending in an empty line:
 *
 * ```
 * 2024-11-23T22:13:20.000Z  partition 2  offset 41  key user-1
 * headers: source=web
 * {
 *   "item": "book"
 * }
 *
 * ```
 */
export function formatRecord(r: TopicRecord): string {
  const lines = [`${new Date(r.timestamp).toISOString()}  partition ${r.partition}  offset ${r.offset}  key ${r.key ?? '(none)'}`];
  const headers = Object.entries(r.headers);
  if (headers.length > 0) lines.push(`headers: ${headers.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  lines.push(JSON.stringify(r.value, null, 2), '');
  return lines.join('\n');
}
