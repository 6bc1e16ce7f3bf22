/**
 * Retriable refusals: a per-principal produce quota makes the server answer RATE_LIMITED (and
 * send slow_down); the producer backs off, retries, and keeps the batches in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readAll, setup, type ClientTestServer } from './setup.js';

let t: ClientTestServer | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

async function quotaServer(recordsPerSecond: number, burstRecords: number): Promise<ClientTestServer> {
  const server = await setup({ server: { quotas: { tiers: { regular: { recordsPerSecond, burstRecords } } } } });
  await server.engine.createTopic('quota');
  return server;
}

async function throttled(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('brook_throttled_total{reason="records"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('producer retries', () => {
  it('retries batches refused with RATE_LIMITED, in order and without duplicates', async () => {
    t = await quotaServer(400, 20);
    const client = t.client();
    const producer = client.producer<number>({
      topic: 'quota',
      partition: 0,
      batchSize: 10,
      lingerMs: 0,
      retries: 50,
      retryBackoff: { baseMs: 20, capMs: 200 },
    });
    const sent = await Promise.all(Array.from({ length: 200 }, (_, n) => producer.send({ value: n })));
    expect(await throttled(t.url)).toBeGreaterThan(0); // the quota did refuse batches
    expect(sent.map((m) => m.offset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect((await readAll(t.engine, 'quota', 0)).map((r) => r.value)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('gives up with the last error once retries are exhausted', async () => {
    t = await quotaServer(1, 10); // a full bucket lets one large batch through, then owes 90 s
    const client = t.client();
    const first = client.producer<number>({ topic: 'quota', partition: 0, batchSize: 100, lingerMs: 0 });
    await Promise.all(Array.from({ length: 100 }, (_, n) => first.send({ value: n })));
    const second = client.producer<number>({ topic: 'quota', partition: 0, retries: 0 });
    await expect(second.send({ value: 1 })).rejects.toMatchObject({ code: 'RATE_LIMITED', retriable: true });
  });
});
