import { Agent, request } from 'node:http';
import { READ_MAX_BYTES } from '../lib/workload.js';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** A keep-alive HTTP/1.1 client for one Brook server on loopback. */
export class BrookHttpClient {
  private readonly agent: Agent;

  constructor(
    readonly port: number,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: string, path: string, body?: string, timeoutMs = 60_000): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Like `request`, but a status outside `ok` is an error carrying the body. */
  async expect(method: string, path: string, ok: readonly number[], body?: string): Promise<string> {
    const answer = await this.request(method, path, body);
    if (!ok.includes(answer.status)) {
      throw new Error(`${method} ${path} answered ${answer.status}: ${answer.body.slice(0, 500)}`);
    }
    return answer.body;
  }

  async healthy(): Promise<boolean> {
    try {
      return (await this.request('GET', '/healthz', undefined, 1000)).status === 200;
    } catch {
      return false; // refused or reset while starting: "not yet", the caller polls
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

interface ReadAnswer {
  readonly records: readonly { readonly offset: number; readonly value: unknown }[];
  readonly next_offset: number;
  readonly high_watermark: number;
}

/** One `GET …/records` page, checked: offsets contiguous from `offset`, string values. */
export async function readPage(
  client: BrookHttpClient,
  topic: string,
  partition: number,
  offset: number,
  max: number,
): Promise<{ count: number; bytes: number; nextOffset: number; highWatermark: number }> {
  const path = `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?offset=${offset}&max=${max}&max_bytes=${READ_MAX_BYTES}&wait_ms=0`;
  const page = JSON.parse(await client.expect('GET', path, [200])) as ReadAnswer;
  let bytes = 0;
  for (let i = 0; i < page.records.length; i++) {
    const record = page.records[i];
    if (record?.offset !== offset + i) throw new Error(`${topic}/${partition}: offset ${record?.offset} where ${offset + i} was expected`);
    // Values went in as JSON strings of recordBytes - 2 chars: their JSON encoding is the payload.
    if (typeof record.value !== 'string') throw new Error(`${topic}/${partition}@${record.offset}: value is not the string produced`);
    bytes += record.value.length + 2;
  }
  return { count: page.records.length, bytes, nextOffset: page.next_offset, highWatermark: page.high_watermark };
}

/** The produce body routing a whole batch of string values to one partition. */
export function produceBody(partition: number, texts: readonly string[]): string {
  // Values are ASCII digits and letters (bench/lib/workload.ts), so no escaping is needed.
  return `{"partition":${partition},"records":[${texts.map((t) => `{"value":"${t}"}`).join(',')}]}`;
}
