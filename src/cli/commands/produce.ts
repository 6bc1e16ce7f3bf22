import type { Readable } from 'node:stream';
import { Batcher } from '../batcher.js';
import { HttpClient, seg, type Connection } from '../http-client.js';
import { readLines } from '../line-reader.js';

export interface ProduceOptions extends Connection {
  /** Use this field of each JSON-object line as the record key. */
  readonly keyField?: string | undefined;
  /** Append everything to this partition instead of routing by key. */
  readonly partition?: number | undefined;
}

const BATCH_LINES = 500;
const BATCH_LINGER_MS = 20;
/** Well under the server's default 8 MiB body limit. */
const BATCH_BYTES = 1024 * 1024;
const MAX_LINE_BYTES = 8 * 1024 * 1024;

/**
 * One record per input line: a line that parses as JSON is sent as that JSON value, any other
 * line as a string; empty lines are skipped. Prints nothing; the first failure rejects.
 */
export async function produce(topic: string, options: ProduceOptions, input: Readable): Promise<void> {
  const client = new HttpClient(options);
  const path = `/v1/topics/${seg(topic)}/records`;
  const partition = options.partition === undefined ? '' : `,"partition":${options.partition}`;
  const batcher = new Batcher<string>({
    maxItems: BATCH_LINES,
    maxBytes: BATCH_BYTES,
    lingerMs: BATCH_LINGER_MS,
    // Records arrive as JSON text already; the body is assembled without re-serializing them.
    send: async (records) => {
      await client.post(path, `{"records":[${records.join(',')}]${partition}}`);
    },
  });
  for await (const line of readLines(input, MAX_LINE_BYTES)) {
    if (line.trim() === '') continue;
    const record = recordJson(line, options.keyField);
    await batcher.add(record, record.length);
  }
  await batcher.close();
}

function recordJson(line: string, keyField: string | undefined): string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    // Not JSON: the line is sent as a string value, by design.
    return `{"value":${JSON.stringify(line)}}`;
  }
  if (keyField !== undefined && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const key = (value as Record<string, unknown>)[keyField];
    if (key !== undefined && key !== null) {
      return `{"key":${JSON.stringify(typeof key === 'string' ? key : JSON.stringify(key))},"value":${line}}`;
    }
  }
  // Valid JSON text can be spliced in as it is.
  return `{"value":${line}}`;
}
