// Three Brook processes on one JetStream prefix act as one system: publish on one node, consume
// on the others, and a node killed with -9 (the group coordinator, with SDK clients connected)
// costs no record: its clients reconnect to another node, the plain consumer resumes with no gap
// and no duplicate, the group rebalances over the survivors and skips nothing.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BrookClient, type Consumer } from '../../src/client/index.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { startCli, type CliProcess } from '../cli/run-cli.js';
import { requireService, SERVICES } from '../helpers/services.js';

const nats = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');

const PARTITIONS = 3;
const RECORDS = 1_500;
const KILL_AFTER = 500;
const BATCH = 50;
/** The members' session timeout, and so the coordinator's takeover delay (docs/jetstream-engine.md, "Failover"). */
const SESSION_TIMEOUT_MS = 3_000;

interface Node {
  readonly cli: CliProcess;
  readonly url: string;
}

async function startNode(prefix: string): Promise<Node> {
  const cli = startCli(['start', '--port', '0', '--engine', 'jetstream', '--nats', nats, '--nats-prefix', prefix, '--log-level', 'warn', '--group-takeover-delay-ms', String(SESSION_TIMEOUT_MS)]);
  const line = await cli.waitForLine(/listening on http:\/\//);
  return { cli, url: /listening on (http:\/\/\S+)/.exec(line)![1]! };
}

/** Waits for `done()`; fails after `ms` with what `progress()` says. */
async function until(done: () => boolean, progress: () => string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${progress()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(natsUp)('three Brook nodes on one JetStream prefix', () => {
  const prefix = `BC${randomBytes(5).toString('hex')}`;
  const nodes: Node[] = [];
  const clients: BrookClient[] = [];
  const client = (urls: string[]): BrookClient => {
    const c = new BrookClient({ url: urls, WebSocket, reconnect: { baseMs: 50, capMs: 500 } });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    // Started one after the other, so the first is the group coordinator.
    for (let i = 0; i < 3; i++) nodes.push(await startNode(prefix));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    for (const n of nodes) {
      n.cli.child.kill('SIGTERM');
      await n.cli.exited(15_000);
    }
    const admin = new JetStreamEngine({ servers: nats, prefix });
    await admin.open();
    await admin.destroy();
  }, 60_000);

  it(
    'survives kill -9 of the coordinator node with clients connected: no gap, no duplicate for the plain consumer, nothing skipped by the group',
    async () => {
      const [a, b, c] = nodes as [Node, Node, Node];
      const created = await fetch(`${a.url}/v1/topics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'orders', partitions: PARTITIONS }),
      });
      expect(created.status).toBe(201);

      // A plain reader of partition 0 on node a, which will die; it fails over to c.
      const plainSeen: number[] = [];
      const plain = client([a.url, c.url]).consumer<number>({ topic: 'orders', partition: 0, from: 'earliest' });
      const plainLoop = (async () => {
        for await (const r of plain) plainSeen.push(r.offset);
      })();

      // A group with one member per node; each fails over to the next node in its list.
      const groupSeen = new Set<string>();
      const members: Consumer<number>[] = [];
      for (const urls of [
        [a.url, b.url, c.url],
        [b.url, c.url, a.url],
        [c.url, a.url, b.url],
      ]) {
        members.push(client(urls).consumer<number>({ topic: 'orders', group: 'billing', sessionTimeoutMs: SESSION_TIMEOUT_MS }));
      }
      const memberLoops = members.map(async (m) => {
        for await (const r of m) groupSeen.add(`${r.partition}:${r.offset}`);
      });
      await Promise.all(members.map((m) => m.ready()));

      // Produced through node b (then c), consumed on a and c: published on one node, read on others.
      const producer = client([b.url, c.url]).producer<number>({ topic: 'orders', maxInflight: 1 });
      for (let sent = 0; sent < RECORDS; sent += BATCH) {
        await Promise.all(Array.from({ length: BATCH }, (_, i) => producer.send({ key: `k${sent + i}`, value: sent + i })));
        if (sent + BATCH === KILL_AFTER) a.cli.child.kill('SIGKILL');
      }
      await a.cli.exited(15_000);

      // What the log holds, as seen by a surviving node.
      const described = (await (await fetch(`${b.url}/v1/topics/orders`)).json()) as {
        partitions: { partition: number; high_watermark: number }[];
      };
      const hw = new Map(described.partitions.map((p) => [p.partition, p.high_watermark]));
      const total = [...hw.values()].reduce((x, y) => x + y, 0);
      expect(total).toBeGreaterThanOrEqual(RECORDS); // a retried batch may be appended twice

      await until(
        () => plainSeen.length >= hw.get(0)! && groupSeen.size >= total,
        () => `plain ${plainSeen.length}/${hw.get(0)}, group ${groupSeen.size}/${total}`,
      );
      // The plain consumer: every offset of partition 0 once, in order, across the failover.
      expect(plainSeen).toEqual(Array.from({ length: hw.get(0)! }, (_, i) => i));
      // The group: every offset of every partition was delivered to some member.
      for (const [p, high] of hw) for (let o = 0; o < high; o++) expect(groupSeen.has(`${p}:${o}`)).toBe(true);

      await Promise.all(clients.map((x) => x.close()));
      await Promise.all([plainLoop, ...memberLoops].map((l) => l.catch(() => undefined)));
    },
    120_000,
  );
});
