import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { call, setup } from './setup.js';

describe('HTTP server lifecycle', () => {
  it('answers pending long polls and waits for in-flight requests on close', async () => {
    const t = await setup();
    try {
      await call(t.url, 'POST', '/v1/topics', { name: 'life' });
      const poll = call(t.url, 'GET', '/v1/topics/life/partitions/0/records?offset=0&wait_ms=30000');

      // A produce the server has accepted (it answered 100 Continue) but whose body is not
      // sent yet when close() starts: it is in flight.
      const body = '{"records":[{"value":"late"}]}';
      const slowRequest = request(`${t.url}/v1/topics/life/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length), expect: '100-continue' },
      });
      const continued = new Promise<void>((r) => slowRequest.once('continue', r));
      const slow = new Promise<{ status: number; body: string }>((resolve, reject) => {
        slowRequest.on('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        slowRequest.on('error', reject);
      });
      slowRequest.flushHeaders();
      await continued;
      // The readiness probe on its own connection sees the server as up until close begins.
      expect((await call(t.url, 'GET', '/readyz')).status).toBe(200);

      const closed = t.server.close();
      const answered = await poll;
      expect(answered.status).toBe(200);
      expect(answered.body).toMatchObject({ records: [] });

      slowRequest.end(body);
      const late = await slow;
      expect(late.status).toBe(200);
      expect(JSON.parse(late.body)).toEqual({ offsets: [{ partition: 0, offset: 0 }] });
      await closed;

      await expect(fetch(`${t.url}/healthz`)).rejects.toThrow();
      // The acknowledged record is in the log.
      expect((await t.engine.watermarks('life', 0)).highWatermark).toBe(1);
    } finally {
      await t.cleanup();
    }
  });

  it('does not wait for connections that never sent a request', async () => {
    // A grace period longer than the test timeout: only ending idle connections lets close() finish.
    const t = await setup({ shutdownGraceMs: 10 * 60_000 });
    const { port, hostname } = new URL(t.url);
    const socket = connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.resume();
    await t.server.close();
    await ended;
    await t.cleanup();
  });

  it('closes idempotently with idle keep-alive connections open', async () => {
    const t = await setup();
    for (let i = 0; i < 3; i++) expect((await call(t.url, 'GET', '/healthz')).status).toBe(200);
    await Promise.all([t.server.close(), t.server.close()]);
    await t.cleanup();
  });
});
