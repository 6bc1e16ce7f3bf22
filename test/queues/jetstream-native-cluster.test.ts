// Two `brook start --engine jetstream --queue-backend native` processes on one prefix serve one
// queue: a node killed with -9 while it holds leases loses nothing — JetStream hands its jobs to
// the surviving node after the lease, and every job is acknowledged exactly by the survivor.
import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { runCli, startCli, type CliProcess } from '../cli/run-cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { deleteNativeQueues } from '../helpers/native-queues.js';
import { requireService, SERVICES } from '../helpers/services.js';
import { call, codeOf } from '../server/setup.js';

const nats = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');

interface Received {
  messages: { id: string; receipt: string; deliveries: number; value: unknown }[];
}

describe.runIf(natsUp)('brook start --queue-backend native on two nodes', () => {
  const prefix = `BK${randomBytes(5).toString('hex')}`;
  const nodes: { cli: CliProcess; url: string }[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const cli = startCli(['start', '--port', '0', '--engine', 'jetstream', '--nats', nats, '--nats-prefix', prefix, '--queue-backend', 'native', '--log-level', 'warn']);
      const line = await cli.waitForLine(/listening on http:\/\//);
      nodes.push({ cli, url: /listening on (http:\/\/\S+)/.exec(line)![1]! });
    }
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) {
      n.cli.child.kill('SIGTERM');
      await n.cli.exited(15_000);
    }
    const nc = await connect({ servers: nats });
    const jsm = await nc.jetstreamManager();
    await deleteNativeQueues(jsm, prefix);
    await nc.close();
    const admin = new JetStreamEngine({ servers: nats, prefix });
    await admin.open();
    await admin.destroy();
    await admin.close();
  }, 60_000);

  it('a node killed with -9 while holding leases loses no job', async () => {
    const [doomed, survivor] = nodes as [{ cli: CliProcess; url: string }, { cli: CliProcess; url: string }];
    expect((await call(doomed.url, 'PUT', '/v1/queues/k-jobs', { visibility_ms: 1_500 })).status).toBe(200);
    const total = 120;
    const put = await call(survivor.url, 'POST', '/v1/queues/k-jobs/messages', { messages: Array.from({ length: total }, (_, i) => ({ value: i })) });
    expect(put.status).toBe(200);
    const held = (await call(doomed.url, 'POST', '/v1/queues/k-jobs/receive', { max: 30 })).body as Received;
    expect(held.messages).toHaveLength(30);
    doomed.cli.child.kill('SIGKILL');
    await doomed.cli.exited(15_000);

    const acked = new Map<number, number>();
    for (let idle = 0; idle < 20 && acked.size < total; ) {
      const got = (await call(survivor.url, 'POST', '/v1/queues/k-jobs/receive', { max: 25, wait_ms: 1_000 })).body as Received;
      if (got.messages.length === 0) {
        idle++;
        continue;
      }
      const ack = await call(survivor.url, 'POST', '/v1/queues/k-jobs/ack', { receipts: got.messages.map((m) => m.receipt) });
      expect([ack.status, codeOf(ack)]).toEqual([204, undefined]);
      for (const m of got.messages) {
        expect(acked.has(m.value as number)).toBe(false); // none acked twice
        acked.set(m.value as number, m.deliveries);
      }
    }
    expect([...acked.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i));
    // The jobs the dead node held came back with their delivery counted.
    for (const m of held.messages) expect(acked.get(m.value as number)).toBe(2);
    expect((await call(survivor.url, 'GET', '/v1/queues/k-jobs')).body).toMatchObject({ depth: 0, in_flight: 0 });
  }, 60_000);

  it('refuses --queue-backend native on the embedded engine, and an unknown backend', async () => {
    const dir = await tempDir('brook-native-cli-');
    try {
      const embedded = await runCli(['start', '--port', '0', '--data', dir.path, '--queue-backend', 'native', '--log-level', 'warn']);
      expect(embedded.code).not.toBe(0);
      expect(embedded.stderr).toContain('the native queue backend needs the JetStream engine');
      const unknown = await runCli(['start', '--port', '0', '--data', dir.path, '--queue-backend', 'redis']);
      expect(unknown.code).not.toBe(0);
      expect(unknown.stderr).toMatch(/queue-backend/);
    } finally {
      await dir.remove();
    }
  }, 60_000);
});
