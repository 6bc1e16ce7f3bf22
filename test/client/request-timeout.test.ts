/**
 * Request timeouts against a server that welcomes the client and then answers only what the test
 * tells it to: every unanswered request fails with REQUEST_TIMEOUT once its own timeout has
 * passed (one sweep serves them all), answered ones are not touched, and the gate places they
 * held are given back.
 */
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { scriptedSessions, until } from './scripted-server.js';

const start = scriptedSessions();

describe('request timeouts', () => {
  it('fails each unanswered request with REQUEST_TIMEOUT and leaves the answered ones alone', async () => {
    const { server, client } = await start({ client: { protocol: 'json', requestTimeoutMs: 150 } });
    const producer = client.producer<number>({ topic: 't', partition: 0, lingerMs: 0, retries: 0 });
    const first = producer.send({ value: 1 }).then(
      () => 'acked',
      (err: { code?: string }) => err.code,
    );
    await until(() => server.produces.length === 1);
    server.ack(server.produces[0]!.id, 0);
    expect(await first).toBe('acked');

    const started = performance.now();
    const second = producer.send({ value: 2 }).catch((err: unknown) => err);
    await until(() => server.produces.length === 2);
    expect(await second).toMatchObject({ code: 'REQUEST_TIMEOUT', retriable: true });
    // Not before its own timeout (the sweep armed by the first request must not cut it short).
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await producer.close().catch(() => undefined);
  });

  it('gives the produce gate back when requests time out, so later sends go out', async () => {
    // One produce frame in flight per connection.
    const { server, client } = await start({ maxInflightProduce: 1, client: { protocol: 'json', requestTimeoutMs: 100 } });
    const a = client.producer<number>({ topic: 't', partition: 0, lingerMs: 0, retries: 0 });
    const b = client.producer<number>({ topic: 't', partition: 1, lingerMs: 0, retries: 0 });
    const outcomes = await Promise.all([a.send({ value: 1 }), b.send({ value: 2 })].map((p) => p.catch((err: { code?: string }) => err.code)));
    // The second waited at the gate until the first timed out, then was sent and timed out itself.
    expect(outcomes).toEqual(['REQUEST_TIMEOUT', 'REQUEST_TIMEOUT']);
    expect(server.produces).toHaveLength(2);
  });

  it('gives the gate place back at once when a request cannot be encoded', async () => {
    // One request in flight per connection, and a timeout far beyond the test's.
    const { server, client } = await start({ maxInflightRequests: 1, client: { protocol: 'json', requestTimeoutMs: 600_000 } });
    await expect(client.enqueue('q', [{ value: 1n }])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', retriable: false });
    // Not held at the gate behind the request that never went out.
    void client.enqueue('q', [{ value: 1 }]).catch(() => undefined);
    await until(() => server.requests.length === 1);
    expect(server.requests).toEqual(['enqueue']);
  });

  it('gives the gate place back at once when the socket refuses to send', async () => {
    /** A socket whose send throws for frames that mention "refuse-me", as a transport might. */
    class RefusingWebSocket extends WebSocket {
      override send(data: unknown, ...rest: unknown[]): void {
        if (typeof data === 'string' && data.includes('refuse-me')) throw new Error('the transport refused the frame');
        (super.send as (...args: unknown[]) => void)(data, ...rest);
      }
    }
    const { server, client } = await start({
      maxInflightRequests: 1,
      client: { protocol: 'json', requestTimeoutMs: 600_000, WebSocket: RefusingWebSocket as unknown as typeof WebSocket },
    });
    await expect(client.enqueue('q', [{ value: 'refuse-me' }])).rejects.toMatchObject({ code: 'CONNECTION_LOST', retriable: true });
    void client.enqueue('q', [{ value: 1 }]).catch(() => undefined);
    await until(() => server.requests.length === 1);
    expect(server.requests).toEqual(['enqueue']);
  });
});
