/**
 * `kill -9` of a real server process with messages ready, in flight, delayed and dead-lettered:
 * after a restart on the same data directory every message is in the right state, none is lost,
 * and no acknowledged one comes back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startCli, type CliProcess } from '../cli/run-cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { call } from '../server/setup.js';

interface Received {
  messages: { id: string; receipt: string; deliveries: number; value: string }[];
}

let dir: { path: string; remove: () => Promise<void> } | undefined;
let server: CliProcess | undefined;
afterEach(async () => {
  server?.child.kill('SIGKILL');
  await server?.exited(10_000);
  await dir?.remove();
});

async function start(data: string): Promise<string> {
  server = startCli(['start', '--port', '0', '--data', data, '--log-level', 'warn']);
  const line = await server.waitForLine(/^brook listening on /);
  return /(http:\/\/\S+)/.exec(line)![1]!;
}

describe('queues survive kill -9', () => {
  it('restores ready, in-flight, delayed and dead-lettered messages; acked ones stay gone', async () => {
    dir = await tempDir('brook-queue-crash-');
    let url = await start(dir.path);
    const q = '/v1/queues/crashy';
    expect((await call(url, 'PUT', q, { max_deliveries: 2 })).status).toBe(200);
    const values = Array.from({ length: 400 }, (_, i) => `m${i}`);
    for (let i = 0; i < values.length; i += 100) {
      const put = await call(url, 'POST', `${q}/messages`, { messages: values.slice(i, i + 100).map((value) => ({ value })) });
      expect(put.status).toBe(200);
    }
    await call(url, 'POST', `${q}/messages`, { messages: [{ value: 'delayed', delay_ms: 3_600_000 }] });
    // 250 received: 150 acked, 40 rejected (dead letters), 60 left in flight.
    const got: Received['messages'] = [];
    while (got.length < 250) {
      const r = (await call(url, 'POST', `${q}/receive`, { max: Math.min(100, 250 - got.length), visibility_ms: 600_000 })).body as Received;
      got.push(...r.messages);
    }
    const acked = got.slice(0, 150);
    const rejected = got.slice(150, 190);
    const inFlight = got.slice(190);
    expect((await call(url, 'POST', `${q}/ack`, { receipts: acked.map((m) => m.receipt) })).status).toBe(204);
    expect((await call(url, 'POST', `${q}/reject`, { receipts: rejected.map((m) => m.receipt), error: 'bad' })).status).toBe(204);
    // One message at its last delivery while the server dies: it must end up dead-lettered.
    const [last] = inFlight.splice(0, 1);
    await call(url, 'POST', `${q}/nack`, { receipts: [last!.receipt], delay_ms: 0 });
    const again = (await call(url, 'POST', `${q}/receive`, { max: 1, visibility_ms: 600_000 })).body as Received;
    expect(again.messages[0]).toMatchObject({ value: last!.value, deliveries: 2 });

    server!.child.kill('SIGKILL');
    await server!.exited(10_000);
    url = await start(dir.path);

    const desc = (await call(url, 'GET', q)).body as Record<string, number>;
    const readyExpected = values.length - 250 + inFlight.length;
    expect({ ready: desc['ready'], in_flight: desc['in_flight'], delayed: desc['delayed'], dead_letters: desc['dead_letters'] }).toEqual({
      ready: readyExpected,
      in_flight: 0,
      delayed: 1,
      dead_letters: rejected.length + 1,
    });
    const after: Received['messages'] = [];
    for (;;) {
      const r = (await call(url, 'POST', `${q}/receive`, { max: 100 })).body as Received;
      if (r.messages.length === 0) break;
      after.push(...r.messages);
    }
    const byValue = new Map(after.map((m) => [m.value, m.deliveries]));
    expect(byValue.size).toBe(readyExpected);
    for (const m of acked) expect(byValue.has(m.value)).toBe(false);
    for (const m of inFlight) expect(byValue.get(m.value)).toBe(2); // the crashed delivery counted
    for (const v of values.slice(250)) expect(byValue.get(v)).toBe(1);
    const dead = (await call(url, 'GET', `${q}/dead-letters?limit=1000`)).body as { messages: { value: string; reason: string }[] };
    expect(dead.messages.filter((d) => d.reason === 'REJECTED').map((d) => d.value).sort()).toEqual(rejected.map((m) => m.value).sort());
    expect(dead.messages.filter((d) => d.reason === 'MAX_DELIVERIES').map((d) => d.value)).toEqual([last!.value]);
  });
});
