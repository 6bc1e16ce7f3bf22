/** Bad input gets a clear error, and the server keeps serving afterwards. */
import { request } from 'node:http';
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine/index.js';
import { createServer } from '../../src/server/index.js';
import { call, codeOf, setup, type Answer, type TestServer } from './setup.js';

const MAX_BODY = 64 * 1024;

describe('HTTP bad input', () => {
  let t: TestServer;
  let served = 0;

  beforeAll(async () => {
    t = await setup({ maxBodyBytes: MAX_BODY, maxBatchRecords: 100 });
    await call(t.url, 'POST', '/v1/topics', { name: 'good', partitions: 1 });
    await call(t.url, 'POST', '/v1/topics', { name: 'tiny', config: { max_record_bytes: 1024 } });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  /** A produce and a read of it still work. */
  async function stillServing(): Promise<void> {
    const value = { n: served++ };
    const produced = await call(t.url, 'POST', '/v1/topics/good/records', { records: [{ value }] });
    expect(produced.status).toBe(200);
    const { offset } = (produced.body as { offsets: { offset: number }[] }).offsets[0]!;
    const read = await call(t.url, 'GET', `/v1/topics/good/partitions/0/records?offset=${offset}&max=1`);
    expect((read.body as { records: { value: unknown }[] }).records[0]!.value).toEqual(value);
  }

  function expectError(answer: Answer, status: number, code: string): void {
    expect({ status: answer.status, code: codeOf(answer) }).toEqual({ status, code });
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    const message = (answer.body as { error: { message: unknown } }).error.message;
    expect(typeof message === 'string' && message.length > 0).toBe(true);
  }

  it('refuses malformed JSON', async () => {
    expectError(await call(t.url, 'POST', '/v1/topics/good/records', '{"records": ['), 400, 'INVALID_JSON');
    expectError(await call(t.url, 'POST', '/v1/topics', "{name:'x'}"), 400, 'INVALID_JSON');
    expectError(await call(t.url, 'POST', '/v1/topics/good/records', ''), 400, 'INVALID_JSON');
    await stillServing();
  });

  it('refuses bodies of the wrong shape or types', async () => {
    const bodies: unknown[] = [
      [1, 2, 3],
      42,
      'null',
      {},
      { records: 'nope' },
      { records: [{ key: 5, value: 1 }] },
      { records: [{ value: 1, headers: { h: 1 } }] },
      // A header name longer than MAX_HEADER_NAME_LENGTH (16,384) could not travel in binary frames.
      { records: [{ value: 1, headers: { ['h'.repeat(16_385)]: 'v' } }] },
      { records: [{ key: 'k' }] },
      { records: [{ valeu: 1 }] },
      { records: [{ value: 1 }], partition: '0' },
      { records: [{ value: 1 }], partition: -1 },
      { records: [{ value: 1 }], partition: 0.5 },
      { records: [{ value: 1 }], partition: 2 ** 60 },
      { records: [{ value: 1 }], producer: { id: 'p', sequence: 0 } },
      { records: [{ value: 1 }], partition: 0, producer: { id: 'p', sequence: -1 } },
      { records: [{ value: 1 }], extra: true },
    ];
    for (const body of bodies) {
      const answer = await call(t.url, 'POST', '/v1/topics/good/records', body);
      expect({ body, status: answer.status, code: codeOf(answer) }).toEqual({ body, status: 400, code: 'INVALID_REQUEST' });
    }
    expectError(await call(t.url, 'POST', '/v1/topics', { name: 'x', partitions: 'three' }), 400, 'INVALID_REQUEST');
    expectError(await call(t.url, 'POST', '/v1/groups/g/offsets', { offsets: [{ topic: 'good', partition: 0 }] }), 400, 'INVALID_REQUEST');
    await stillServing();
  });

  it('refuses an empty batch', async () => {
    expectError(await call(t.url, 'POST', '/v1/topics/good/records', { records: [] }), 400, 'INVALID_REQUEST');
    await stillServing();
  });

  it('refuses an oversized record and an oversized batch with 413', async () => {
    expectError(
      await call(t.url, 'POST', '/v1/topics/tiny/records', { records: [{ value: 'x'.repeat(2000) }] }),
      413,
      'MESSAGE_TOO_LARGE',
    );
    expectError(
      await call(t.url, 'POST', '/v1/topics/good/records', { records: Array.from({ length: 101 }, () => ({ value: 1 })) }),
      413,
      'MESSAGE_TOO_LARGE',
    );
    // Nothing of a refused batch was written.
    const tiny = (await call(t.url, 'GET', '/v1/topics/tiny')).body as { partitions: { high_watermark: number }[] };
    expect(tiny.partitions[0]!.high_watermark).toBe(0);
    await stillServing();
  });

  it('refuses a body over maxBodyBytes, declared or streamed, without reading it all', async () => {
    const big = JSON.stringify({ records: [{ value: 'x'.repeat(MAX_BODY) }] });
    expectError(await call(t.url, 'POST', '/v1/topics/good/records', big), 413, 'MESSAGE_TOO_LARGE');

    // Chunked: no length up front; the server stops at the bound. The client keeps sending
    // until the answer comes (or the connection is cut after it).
    const streamed = await rawPost(t.url, '/v1/topics/good/records', { 'content-type': 'application/json' }, 'stream');
    expect(streamed.status).toBe(413);
    expect(streamed.body).toContain('MESSAGE_TOO_LARGE');

    // Expect: 100-continue with an oversized length: refused before the body is sent.
    const early = await rawPost(
      t.url,
      '/v1/topics/good/records',
      { 'content-type': 'application/json', 'content-length': String(MAX_BODY * 4), expect: '100-continue' },
      'expect',
    );
    expect(early.status).toBe(413);
    expect(early.body).toContain('MESSAGE_TOO_LARGE');
    await stillServing();
  });

  it('refuses invalid topic names', async () => {
    // ("..": URL clients resolve it away before sending, so it is only tried as a body field.)
    for (const name of ['bad name', 'a%2Fb', 'x'.repeat(250), 'ünï', '*']) {
      const path = `/v1/topics/${name.includes('%') ? name : encodeURIComponent(name)}`;
      expectError(await call(t.url, 'POST', `${path}/records`, { records: [{ value: 1 }] }), 400, 'INVALID_TOPIC_NAME');
      expectError(await call(t.url, 'GET', `${path}/partitions/0/records`), 400, 'INVALID_TOPIC_NAME');
      expectError(await call(t.url, 'GET', path), 400, 'INVALID_TOPIC_NAME');
    }
    expectError(await call(t.url, 'POST', '/v1/topics', { name: 'a/b' }), 400, 'INVALID_TOPIC_NAME');
    expectError(await call(t.url, 'POST', '/v1/topics', { name: '' }), 400, 'INVALID_TOPIC_NAME');
    expectError(await call(t.url, 'POST', '/v1/topics', { name: '..' }), 400, 'INVALID_TOPIC_NAME');
    expectError(await call(t.url, 'GET', '/v1/topics/%E0%A4%A'), 400, 'INVALID_REQUEST');
    await stillServing();
  });

  it('refuses bad offsets and read parameters', async () => {
    const base = '/v1/topics/good/partitions/0/records';
    for (const query of [
      'offset=-1',
      'offset=1.5',
      'offset=abc',
      'offset=1e3',
      'offset=0x10',
      'offset=',
      'offset=%201',
      'max=0',
      'max=-3',
      'max=ten',
      'max_bytes=0',
      'wait_ms=-1',
      'wait_ms=1.5',
      'timestamp=yesterday',
      'offset=0&timestamp=0',
    ]) {
      const answer = await call(t.url, 'GET', `${base}?${query}`);
      expect({ query, status: answer.status, code: codeOf(answer) }).toEqual({ query, status: 400, code: 'INVALID_REQUEST' });
    }
    for (const offset of ['99999999999999999999', String(Number.MAX_SAFE_INTEGER), '9007199254740993', '1000000']) {
      const answer = await call(t.url, 'GET', `${base}?offset=${offset}`);
      expect({ offset, status: answer.status, code: codeOf(answer) }).toEqual({ offset, status: 416, code: 'OFFSET_OUT_OF_RANGE' });
    }
    expectError(await call(t.url, 'GET', '/v1/topics/good/partitions/x/records'), 400, 'INVALID_REQUEST');
    expectError(await call(t.url, 'GET', '/v1/topics/good/partitions/-1/records'), 400, 'INVALID_REQUEST');
    expectError(await call(t.url, 'GET', '/v1/topics/good/partitions/7/records'), 404, 'PARTITION_NOT_FOUND');
    expectError(await call(t.url, 'GET', '/v1/topics/good/partitions/99999999999999999999999/records'), 404, 'PARTITION_NOT_FOUND');
    expectError(await call(t.url, 'GET', '/v1/topics/missing/partitions/0/records'), 404, 'TOPIC_NOT_FOUND');
    await stillServing();
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    expectError(await call(t.url, 'GET', '/nope'), 404, 'NOT_FOUND');
    expectError(await call(t.url, 'GET', '/v1/topics/good/partitions'), 404, 'NOT_FOUND');
    expectError(await call(t.url, 'GET', '/v2/topics'), 404, 'NOT_FOUND');
    const put = await call(t.url, 'PUT', '/v1/topics', { name: 'x' });
    expectError(put, 405, 'METHOD_NOT_ALLOWED');
    expect(put.headers.get('allow')).toBe('POST, GET');
    const del = await call(t.url, 'DELETE', '/healthz');
    expectError(del, 405, 'METHOD_NOT_ALLOWED');
    expect(del.headers.get('allow')).toBe('GET');
    expectError(await call(t.url, 'PATCH', '/v1/topics/good/records', { records: [] }), 405, 'METHOD_NOT_ALLOWED');
    await stillServing();
  });

  it('refuses POST bodies that are not JSON with 415', async () => {
    const records = JSON.stringify({ records: [{ value: 1 }] });
    expectError(
      await call(t.url, 'POST', '/v1/topics/good/records', records, { 'content-type': 'text/plain' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectError(
      await call(t.url, 'POST', '/v1/topics/good/records', records, { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectError(await call(t.url, 'POST', '/v1/topics/good/records', records, { 'content-type': '' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    const charset = await call(t.url, 'POST', '/v1/topics/good/records', records, {
      'content-type': 'Application/JSON; charset=utf-8',
    });
    expect(charset.status).toBe(200);
    await stillServing();
  });

  it('answers a malformed HTTP request with 400 and keeps serving', async () => {
    const { port, hostname } = new URL(t.url);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.write('GARBAGE \x00\x01 nonsense\r\n\r\n'));
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (data += chunk));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    await stillServing();
  });
});

describe('HTTP unexpected errors', () => {
  it('answers 500 INTERNAL, logs, and keeps serving', async () => {
    const t = await setup();
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    // The real engine, with one operation failing the way a bug would.
    const broken = new Proxy(t.engine as Engine, {
      get(target, prop, receiver) {
        if (prop === 'listTopics') return () => Promise.reject(new TypeError('boom: a bug'));
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const server = await createServer({ engine: broken, host: '127.0.0.1', port: 0, logger });
    try {
      const answer = await call(server.url, 'GET', '/v1/topics');
      expect(answer.status).toBe(500);
      expect(answer.body).toEqual({ error: { code: 'INTERNAL', message: 'internal server error' } });
      expect(lines.some((l) => l.includes('boom: a bug'))).toBe(true);
      expect((await call(server.url, 'POST', '/v1/topics', { name: 'after' })).status).toBe(201);
    } finally {
      await server.close();
      await t.cleanup();
    }
  });
});

/**
 * A POST through node:http: `stream` sends an endless chunked body until the answer arrives;
 * `expect` announces a body with Expect: 100-continue and sends it only if told to continue.
 */
function rawPost(
  base: string,
  path: string,
  headers: Record<string, string>,
  mode: 'stream' | 'expect',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let answered = false;
    const req = request(base + path, { method: 'POST', headers }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.setTimeout(20_000, () => req.destroy(new Error('timed out')));
    if (mode === 'expect') {
      req.on('continue', () => req.end(Buffer.alloc(Number(headers['content-length']), 0x20)));
      req.flushHeaders();
      return;
    }
    req.write('{"records":[{"value":"');
    const pump = (): void => {
      let sent = 0;
      // Bounded: far more than the limit, never endless if the server misbehaves.
      while (!answered && sent < 64 && req.write(chunk)) sent++;
      if (!answered && !req.destroyed) req.once('drain', pump);
    };
    pump();
  });
}
