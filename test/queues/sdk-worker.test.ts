import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BrookClient, type Job } from '../../src/client/index.js';
import { setup, type ClientTestServer } from '../client/setup.js';
import { call } from '../server/setup.js';
import { eventually } from '../ws/setup.js';

let t: ClientTestServer;
beforeEach(async () => {
  t = await setup();
});
afterEach(async () => {
  await t.cleanup();
});

const stats = async (queue: string): Promise<Record<string, number>> => (await call(t.url, 'GET', `/v1/queues/${queue}`)).body as Record<string, number>;

describe('SDK worker', () => {
  it('acks on success, retries failures with backoff, survives throwing handlers, never exceeds its concurrency', async () => {
    await call(t.url, 'PUT', '/v1/queues/sdk-a', { backoff: { base_ms: 1, cap_ms: 5 } });
    const client = t.client();
    const ids = await client.enqueue('sdk-a', Array.from({ length: 60 }, (_, i) => ({ value: { n: i } })));
    expect(ids).toHaveLength(60);
    const done = new Map<number, number>();
    let active = 0;
    let maxActive = 0;
    const errors: Error[] = [];
    client.on('error', (err) => errors.push(err));
    const worker = client.worker<{ n: number }>(
      'sdk-a',
      async (job: Job<{ n: number }>) => {
        active++;
        maxActive = Math.max(maxActive, active);
        try {
          await new Promise((r) => setImmediate(r));
          if (job.value.n % 5 === 0 && job.deliveries === 1) throw new Error(`flaky ${job.value.n}`);
          done.set(job.value.n, job.deliveries);
        } finally {
          active--;
        }
      },
      { concurrency: 4 },
    );
    // A handler that throws synchronously, on its own worker: it fails its jobs, not the pool.
    await client.enqueue('sdk-sync', [{ value: 1 }, { value: 2 }]);
    await call(t.url, 'PUT', '/v1/queues/sdk-sync', { max_deliveries: 1 });
    const thrower = client.worker('sdk-sync', () => {
      throw new Error('sync boom');
    });
    await eventually(() => done.size === 60, 'all 60 jobs done');
    expect(maxActive).toBeLessThanOrEqual(4);
    for (const [n, deliveries] of done) expect(deliveries).toBe(n % 5 === 0 ? 2 : 1);
    await eventually(async () => (await stats('sdk-a'))['depth'] === 0 && (await stats('sdk-sync'))['dead_letters'] === 2, 'settled');
    expect(thrower.stats.failed).toBe(2);
    await worker.stop();
    await thrower.stop();
    expect((await stats('sdk-a'))['acked']).toBe(60);
    const dead = (await call(t.url, 'GET', '/v1/queues/sdk-sync/dead-letters')).body as { messages: { last_error: string }[] };
    expect(dead.messages.map((m) => m.last_error)).toEqual(['sync boom', 'sync boom']);
    expect(errors).toEqual([]);
  });

  it('extends the lease of a job that outlives it, so it is not delivered twice', async () => {
    const client = t.client();
    await client.enqueue('sdk-long', [{ value: 'slow' }]);
    let runs = 0;
    const worker = client.worker(
      'sdk-long',
      async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 900)); // three leases long
      },
      { visibilityMs: 300, extendEveryMs: 100 },
    );
    await eventually(async () => (await stats('sdk-long'))['acked'] === 1, 'the slow job acked');
    expect(runs).toBe(1);
    expect((await stats('sdk-long'))['redeliveries']).toBe(0);
    await worker.stop();
  });

  it('stops gracefully: running jobs finish and are acked before stop() resolves', async () => {
    const client = t.client();
    await client.enqueue('sdk-stop', [{ value: 1 }, { value: 2 }, { value: 3 }]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const worker = client.worker(
      'sdk-stop',
      async () => {
        started++;
        await gate;
      },
      { concurrency: 2 },
    );
    await eventually(() => started === 2, 'two jobs running');
    let stopped = false;
    const stopping = worker.stop().then(() => (stopped = true));
    await eventually(async () => (await stats('sdk-stop'))['in_flight'] === 2, 'still two in flight');
    expect(stopped).toBe(false);
    release();
    await stopping;
    const s = await stats('sdk-stop');
    expect([s['acked'], s['ready'], s['in_flight']]).toEqual([2, 1, 0]);
  });

  it('hands the job of a worker whose connection died to another worker', async () => {
    const a = t.client();
    await a.enqueue('sdk-die', [{ value: 'job' }]);
    const seen: string[] = [];
    let hang!: () => void;
    const workerA = a.worker(
      'sdk-die',
      async (job) => {
        seen.push(`a:${job.deliveries}`);
        await new Promise<void>((r) => (hang = r));
      },
      { concurrency: 1, visibilityMs: 600_000 },
    );
    a.on('error', () => undefined); // its late ack is refused: the lease was released
    await eventually(() => seen.length === 1, 'a took the job');
    t.cut();
    const b = new BrookClient({ url: t.url, WebSocket });
    const workerB = b.worker('sdk-die', (job) => {
      seen.push(`b:${job.deliveries}`);
    });
    await eventually(() => seen.includes('b:2'), 'b got the job with its second delivery');
    hang();
    await workerA.stop();
    await workerB.stop();
    await b.close();
    expect(seen).toEqual(['a:1', 'b:2']);
  });
});
