/**
 * Forced disconnects: a proxy in front of the server cuts every connection (both ends, so the
 * server sees its sockets close and leaves the client's groups); the client reconnects through it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { BrookClient } from '../../src/client/index.js';
import type { Engine } from '../../src/engine/index.js';
import { call } from '../server/setup.js';
import { readAll, setup, take, type ClientTestServer } from './setup.js';

let t: ClientTestServer | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

/** Cuts the connection right after the engine appended a batch, before its ack can leave the server. */
function cutAfterAppend(engine: Engine, which: number, cut: () => void): Engine {
  let appends = 0;
  return new Proxy(engine, {
    get: (target, prop, receiver) => {
      if (prop === 'append') {
        return async (...args: Parameters<Engine['append']>) => {
          const result = await target.append(...args);
          if (++appends === which) cut();
          return result;
        };
      }
      if (prop === 'appendStored' && target.appendStored !== undefined) {
        return async (...args: Parameters<NonNullable<Engine['appendStored']>>) => {
          const result = await target.appendStored!(...args);
          if (++appends === which) cut();
          return result;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('reconnect', () => {
  it('an idempotent producer retries after a lost ack without duplicating anything', async () => {
    let cut = (): void => undefined;
    t = await setup({ wrap: (engine) => cutAfterAppend(engine, 2, () => cut()) });
    cut = t.cut;
    const client = t.client();
    const events: string[] = [];
    client.on('disconnected', () => events.push('disconnected'));
    client.on('connected', (e) => events.push(e.reconnect ? 'reconnected' : 'connected'));
    const producer = client.producer<number>({ topic: 'idem', partition: 0, batchSize: 5, lingerMs: 0, maxInflight: 3 });
    const sent = await Promise.all(Array.from({ length: 30 }, (_, n) => producer.send({ value: n })));

    expect(events).toEqual(['connected', 'disconnected', 'reconnected']);
    expect(sent.map((m) => m.offset)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const log = await readAll(t.engine, 'idem', 0);
    expect(log.map((r) => r.value)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('a plain consumer resumes after a reconnect with no gap and no duplicate', async () => {
    t = await setup();
    const client = t.client();
    const producer = client.producer<number>({ topic: 'resume', partition: 0 });
    await Promise.all(Array.from({ length: 40 }, (_, n) => producer.send({ value: n })));
    const consumer = client.consumer<number>({ topic: 'resume', credits: 7 });
    const got = (await take(consumer, 15)).map((r) => r.offset);
    // The server still holds credit, so more arrive; records in memory are dropped and read again.
    await vi.waitFor(() => expect(consumer.buffered).toBeGreaterThan(0));

    const reconnected = new Promise<void>((resolve) => client.on('connected', () => resolve()));
    t.cut();
    got.push(...(await take(consumer, 25)).map((r) => r.offset));
    await reconnected;
    await Promise.all(Array.from({ length: 10 }, (_, n) => producer.send({ value: 40 + n })));
    got.push(...(await take(consumer, 10)).map((r) => r.offset));

    expect(t.proxied).toBeGreaterThanOrEqual(2);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('a group member rejoins after a reconnect and resumes its partitions from where it was', async () => {
    t = await setup();
    expect((await call(t.url, 'POST', '/v1/topics', { name: 'rejoin', partitions: 2 })).status).toBe(201);
    const client = t.client();
    const producers = [0, 1].map((partition) => client.producer<number>({ topic: 'rejoin', partition }));
    await Promise.all(producers.flatMap((p, partition) => Array.from({ length: 20 }, (_, n) => p.send({ value: partition * 100 + n }))));
    const consumer = client.consumer<number>({ topic: 'rejoin', group: 'rj', credits: 4, sessionTimeoutMs: 3000 });
    const seen = new Map<number, number[]>([
      [0, []],
      [1, []],
    ]);
    for (const r of await take(consumer, 12)) seen.get(r.partition)!.push(r.offset);
    // Committed offsets keep the group while it has no member (an empty group without offsets
    // is forgotten and starts again at generation 1), so the rejoin must move the generation on.
    await consumer.commit();
    const generation = consumer.generation;

    t.cut();
    for (const r of await take(consumer, 28)) seen.get(r.partition)!.push(r.offset);

    expect(consumer.generation).toBeGreaterThan(generation);
    expect(seen.get(0)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(seen.get(1)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('reconnects with exponential backoff and full jitter while the server is unreachable', async () => {
    t = await setup();
    // Not t.client(): cleanup() would close it.
    const client = new BrookClient({ url: t.proxyUrl, WebSocket, reconnect: { baseMs: 10, capMs: 40, maxAttempts: 4 } });
    await client.connect();
    const delays: number[] = [];
    client.on('reconnecting', (e) => delays.push(e.delayMs));
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await t.cleanup(); // server and proxy gone: every attempt fails
    t = undefined;
    await expect(client.connect()).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(delays).toHaveLength(4);
    delays.forEach((d, attempt) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(40, 10 * 2 ** attempt));
    });
    expect(client.state).toBe('closed');
    expect(errors.at(-1)).toMatchObject({ code: 'CONNECTION_LOST' });
  });
});
