import type { Writable } from 'node:stream';
import { HttpClient, type Connection } from '../http-client.js';
import { writeLine } from '../output.js';
import { readTopic, type ReadOptions } from '../record-reader.js';

export interface ConsumeOptions extends Connection, ReadOptions {}

/**
 * Prints one JSON line per record (`partition`, `offset`, `key`, `value`, `headers`,
 * `timestamp`), for programs: see `readTopic` for where reading starts and when it stops.
 */
export async function consume(topic: string, options: ConsumeOptions, out: Writable, signal: AbortSignal): Promise<void> {
  await readTopic(
    new HttpClient(options),
    topic,
    options,
    (r) =>
      writeLine(
        out,
        JSON.stringify({ partition: r.partition, offset: r.offset, key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp }),
      ),
    signal,
  );
}
