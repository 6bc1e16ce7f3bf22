import type { Writable } from 'node:stream';
import { HttpClient, seg, type Connection } from '../http-client.js';
import { writeLine } from '../output.js';

interface TopicBody {
  readonly name: string;
  readonly partitions: { readonly partition: number; readonly high_watermark: number }[];
}

export async function listTopics(connection: Connection, out: Writable): Promise<void> {
  const { topics } = await new HttpClient(connection).get<{ topics: TopicBody[] }>('/v1/topics');
  for (const t of [...topics].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    await writeLine(out, `${t.name}\t${t.partitions.length} partition${t.partitions.length === 1 ? '' : 's'}`);
  }
}

export async function describeTopic(connection: Connection, name: string, out: Writable): Promise<void> {
  const topic = await new HttpClient(connection).get<TopicBody>(`/v1/topics/${seg(name)}`);
  await writeLine(out, JSON.stringify(topic, null, 2));
}

/**
 * `config` entries are `key=value` in the API's snake_case (`retention_ms=3600000`); values that
 * read as JSON (numbers, `null`) are sent as such, anything else as a string.
 */
export async function createTopic(
  connection: Connection,
  name: string,
  options: { readonly partitions: number; readonly config: readonly string[] },
  out: Writable,
): Promise<void> {
  const config: Record<string, unknown> = {};
  for (const entry of options.config) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new Error(`--config expects key=value, got "${entry}"`);
    const raw = entry.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON (e.g. compact): sent as the string it is.
    }
    config[entry.slice(0, eq)] = value;
  }
  const body = { name, partitions: options.partitions, ...(options.config.length > 0 ? { config } : {}) };
  const topic = await new HttpClient(connection).post<TopicBody>('/v1/topics', body);
  await writeLine(out, JSON.stringify(topic, null, 2));
}

export async function deleteTopic(connection: Connection, name: string): Promise<void> {
  await new HttpClient(connection).delete(`/v1/topics/${seg(name)}`);
}
