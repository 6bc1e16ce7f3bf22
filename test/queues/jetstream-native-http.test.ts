/**
 * Two Brook servers with `queueBackend: 'native'` on one JetStream prefix serve one queue over
 * HTTP and WebSocket (the SDK worker): the routes and the session run unchanged on the backend.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BrookClient, type Job } from '../../src/client/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { createServer, type BrookServer } from '../../src/server/index.js';
import { deleteNativeQueues } from '../helpers/native-queues.js';
import { requireService, SERVICES } from '../helpers/services.js';
import { tempDir } from '../helpers/temp-dir.js';
import { call, codeOf } from '../server/setup.js';
import { eventually } from '../ws/setup.js';

const servers = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');

interface Received {
  messages: { id: string; receipt: string; deliveries: number; value: unknown; key: string | null }[];
}

describe.runIf(natsUp)('native queues on two Brook servers', () => {
  const prefix = `BH${randomBytes(5).toString('hex')}`;
  const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
  const nodes: { engine: JetStreamEngine; server: BrookServer }[] = [];
  let one: string;
  let two: string;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const engine = new JetStreamEngine({ servers, prefix, logger });
      await engine.open();
      const server = await createServer({ engine, host: '127.0.0.1', port: 0, logger, queueBackend: 'native' });
      nodes.push({ engine, server });
    }
    [one, two] = nodes.map((n) => n.server.url) as [string, string];
  });
  afterAll(async () => {
    for (const { server } of nodes) await server.close();
    const nc = await connect({ servers });
    const jsm = await nc.jetstreamManager();
    await deleteNativeQueues(jsm, prefix);
    await nc.close();
    for (const { engine } of nodes) await engine.close();
    const admin = new JetStreamEngine({ servers, prefix });
    await admin.open();
    await admin.destroy();
    await admin.close();
  });

  it('enqueue on one server, receive and settle on the other, dead letters and redrive', async () => {
    const put = await call(one, 'PUT', '/v1/queues/h-native', { max_deliveries: 2, backoff: { base_ms: 1, cap_ms: 1 } });
    expect([put.status, put.body]).toMatchObject([200, { config: { max_deliveries: 2 } }]);
    const ids = ((await call(one, 'POST', '/v1/queues/h-native/messages', { messages: [{ value: { job: 1 } }, { value: 'bad', key: 'k' }] })).body as { ids: string[] }).ids;
    const got = (await call(two, 'POST', '/v1/queues/h-native/receive', { max: 10 })).body as Received;
    expect(got.messages.map((m) => [m.id, m.value, m.deliveries, m.key])).toEqual([
      [ids[0], { job: 1 }, 1, null],
      [ids[1], 'bad', 1, 'k'],
    ]);
    expect((await call(one, 'POST', '/v1/queues/h-native/nack', { receipts: [got.messages[0]!.receipt], error: 'once' })).status).toBe(204);
    expect((await call(one, 'POST', '/v1/queues/h-native/reject', { receipts: [got.messages[1]!.receipt], error: 'invalid' })).status).toBe(204);
    const again = (await call(two, 'POST', '/v1/queues/h-native/receive', { wait_ms: 5_000 })).body as Received;
    expect(again.messages.map((m) => [m.id, m.deliveries])).toEqual([[ids[0], 2]]);
    expect((await call(two, 'POST', '/v1/queues/h-native/nack', { receipts: [again.messages[0]!.receipt], error: 'twice' })).status).toBe(204);
    const dead = (await call(one, 'GET', '/v1/queues/h-native/dead-letters')).body as { messages: { id: string; value: unknown; reason: string; last_error: string; deliveries: number }[] };
    expect(dead.messages.map((l) => [l.value, l.reason, l.last_error, l.deliveries])).toEqual([
      ['bad', 'REJECTED', 'invalid', 1],
      [{ job: 1 }, 'MAX_DELIVERIES', 'twice', 2],
    ]);
    const redrive = await call(two, 'POST', '/v1/queues/h-native/dead-letters/redrive', { all: true });
    expect((redrive.body as { ids: string[] }).ids).toHaveLength(2);
    expect((await call(one, 'GET', '/v1/queues/h-native')).body).toMatchObject({ name: 'h-native', depth: 2, ready: 2, in_flight: 0, dead_letters: 0 });
  });

  it('answers what the backend cannot do with clear errors', async () => {
    await call(one, 'PUT', '/v1/queues/h-nbad', { max_depth: 1 });
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/v1/queues/h-nbad/messages', { messages: [{ value: 1, priority: 2 }] }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/queues/h-nbad/messages', { messages: [{ value: 1, deadline: Date.now() + 60_000 }] }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/queues/h-nbad/messages', { messages: [{ value: 1, ttl_ms: 1_000 }] }, 400, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/queues/h-nbad', { balance: 'key-sticky' }, 400, 'INVALID_ARGUMENT'],
      ['PUT', '/v1/queues/h-nbad', { default_ttl_ms: 5_000 }, 400, 'INVALID_ARGUMENT'],
      ['POST', '/v1/queues/h-nbad/ack', { receipts: ['no-such-receipt'] }, 409, 'UNKNOWN_RECEIPT'],
      ['POST', '/v1/queues/nope/receive', {}, 404, 'QUEUE_NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const answer = await call(two, method, path, body);
      expect([path, answer.status, codeOf(answer)]).toEqual([path, status, code]);
    }
    expect((await call(one, 'POST', '/v1/queues/h-nbad/messages', { messages: [{ value: 1 }] })).status).toBe(200);
    const full = await call(two, 'POST', '/v1/queues/h-nbad/messages', { messages: [{ value: 2 }] });
    expect([full.status, codeOf(full)]).toEqual([429, 'QUEUE_FULL']);
  });

  it('SDK workers on both servers process every job once', async () => {
    const clients = [one, two].map((url) => new BrookClient({ url, WebSocket, reconnect: { baseMs: 20, capMs: 200 }, requestTimeoutMs: 10_000 }));
    const ids = await clients[0]!.enqueue('h-sdk', Array.from({ length: 80 }, (_, i) => ({ value: { n: i } })));
    expect(ids).toHaveLength(80);
    const done: number[] = [];
    const workers = clients.map((client) =>
      client.worker<{ n: number }>(
        'h-sdk',
        (job: Job<{ n: number }>) => {
          done.push(job.value.n);
        },
        { concurrency: 2 },
      ),
    );
    await eventually(async () => ((await call(one, 'GET', '/v1/queues/h-sdk')).body as { depth: number }).depth === 0, 'every job acked');
    for (const w of workers) await w.stop();
    for (const c of clients) c.close();
    expect(done.sort((x, y) => x - y)).toEqual(Array.from({ length: 80 }, (_, i) => i));
    // Acks and processing times reach the metrics of the node that acked, whichever node delivered.
    let acks = 0;
    for (const url of [one, two]) {
      const text = await (await fetch(`${url}/metrics`)).text();
      acks += Number(/^brook_queue_acks_total\{queue="h-sdk"\} (\d+)/m.exec(text)?.[1] ?? 0);
      expect(text).toMatch(/^brook_queue_depth\{queue="h-sdk"\} 0/m);
    }
    expect(acks).toBe(80);
  });

  it('refuses the native backend on the embedded engine', async () => {
    const dir = await tempDir('brook-native-refused-');
    const engine = new EmbeddedEngine({ dataDir: dir.path, logger });
    await engine.open();
    await expect(createServer({ engine, host: '127.0.0.1', port: 0, logger, queueBackend: 'native' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await engine.close();
    await dir.remove();
  });
});
