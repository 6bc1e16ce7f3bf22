/**
 * Channels on several Brook nodes (docs/channels.md, "Several nodes"): two in-process servers on
 * two JetStream engines sharing one prefix on the local NATS. Publish on one node, receive on the
 * other; concurrent publishers on both nodes give one order everywhere; a client whose node stops
 * reconnects to the other and recovers without gap or duplicate; topic channels across nodes.
 */
import { randomBytes } from 'node:crypto';
import { connect, headers } from 'nats';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RealtimeClient, type SubscribedInfo, type WebSocketConstructor } from '../../src/client/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { createServer, type BrookServer } from '../../src/server/index.js';
import { destroyChannelCluster } from '../helpers/channel-cluster.js';
import { requireService, SERVICES } from '../helpers/services.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dir.js';
import { eventually } from '../ws/setup.js';

const servers = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');
const NAMESPACES = [
  { name: 'chat', history: { size: 1000, ttlMs: 60_000 }, presence: true, joinLeave: true },
  { name: 'doc', history: { size: 1000, ttlMs: 60_000, durable: true } },
  { name: 'tiny', history: { size: 2, ttlMs: 60_000 } },
  { name: 'topic', source: 'topic' as const },
];
const PRESENCE_TTL_MS = 1500;
const SERVER = { user: '', unrestricted: true, capabilities: [] } as const;

interface Node {
  readonly server: BrookServer;
  readonly engine: JetStreamEngine;
  readonly url: string;
  stop(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh prefix, its streams and buckets destroyed after the test. */
function cluster(): { node: (via?: string) => Promise<Node> } {
  const prefix = `BC${randomBytes(5).toString('hex')}`;
  cleanups.push(async () => {
    await destroyChannelCluster(servers, prefix);
  });
  return {
    /** `via`: the NATS URL this node connects to (a proxy, to fault its connection alone). */
    async node(via = servers) {
      const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
      const engine = new JetStreamEngine({ servers: via, prefix, logger });
      await engine.open();
      const server = await createServer({ engine, host: '127.0.0.1', port: 0, logger, channels: { namespaces: NAMESPACES, cluster: 'jetstream', presenceTtlMs: PRESENCE_TTL_MS } });
      let stopped = false;
      const stop = async (): Promise<void> => {
        if (stopped) return;
        stopped = true;
        await server.close();
        await engine.close();
      };
      cleanups.push(stop);
      return { server, engine, url: `http://127.0.0.1:${server.port}`, stop };
    },
  };
}

/**
 * Nodes A and B, B reaching NATS through a TCP proxy, and `partitioned(during)`: cuts B's NATS
 * connection, runs `during` (what A publishes meanwhile never reaches B's live subscription),
 * heals it and waits until B's subscriptions are back on the server.
 */
async function splitPair(): Promise<{ a: Node; b: Node; partitioned: (during: () => Promise<void>) => Promise<void> }> {
  const proxy = await tcpProxy(SERVICES.nats);
  cleanups.push(() => proxy.close());
  const c = cluster();
  const a = await c.node();
  const b = await c.node(`nats://127.0.0.1:${proxy.port}`);
  const nc = b.engine.natsAccess().nc;
  const events: string[] = [];
  void (async () => {
    for await (const s of nc.status()) events.push(s.type);
  })();
  return {
    a,
    b,
    async partitioned(during) {
      const seen = events.length;
      proxy.cut();
      await eventually(() => events.slice(seen).includes('disconnect'), 'node B disconnected');
      await during();
      proxy.heal();
      await eventually(() => events.slice(seen).includes('reconnect'), 'node B reconnected', 20_000);
      await nc.flush(); // its live subscription is back on the server
    },
  };
}

function client(url: string | string[]): RealtimeClient {
  const c = new RealtimeClient({ url, WebSocket: WebSocket as unknown as WebSocketConstructor, reconnect: { baseMs: 20, capMs: 200 } });
  cleanups.push(() => c.close());
  return c;
}

/** Subscribes and waits for the `subscribed` answer; collects data and offsets. */
async function follow(rt: RealtimeClient, channel: string): Promise<{ data: unknown[]; offsets: number[]; subscribed: SubscribedInfo[] }> {
  const out = { data: [] as unknown[], offsets: [] as number[], subscribed: [] as SubscribedInfo[] };
  rt.subscribe(channel, (m) => {
    out.data.push(m.data);
    out.offsets.push(m.offset);
  }, { onSubscribed: (s) => out.subscribed.push(s) });
  await eventually(() => out.subscribed.length === 1, `subscribed to ${channel}`);
  return out;
}

const increasing = (xs: readonly number[]): boolean => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

/** One unlabelled sample of a node's `/metrics`. */
async function metric(node: Node, name: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

describe.runIf(natsUp)('channels on several nodes (JetStream)', () => {
  it('a message published on node A reaches a subscriber on node B, in order; history is the same on both nodes', async () => {
    const c = cluster();
    const a = await c.node();
    const b = await c.node();
    const onB = await follow(client(b.url), 'chat:room');
    const rtA = client(a.url);
    const offsets: number[] = [];
    for (let i = 0; i < 30; i++) offsets.push((await rtA.publish('chat:room', i)).offset);
    await eventually(() => onB.data.length === 30, 'all 30 on node B');
    expect(onB.data).toEqual([...Array(30).keys()]);
    expect(onB.offsets).toEqual(offsets);
    expect(increasing(offsets)).toBe(true);
    const ha = await a.server.channels.history(SERVER, 'chat:room', -1, 100);
    const hb = await b.server.channels.history(SERVER, 'chat:room', -1, 100);
    expect(hb.epoch).toBe(ha.epoch);
    expect(hb.publications.map((p) => p.offset)).toEqual(offsets);
    expect(ha.publications.map((p) => p.data)).toEqual(hb.publications.map((p) => p.data));
    // History after an offset, from the node that did not publish.
    const tail = await b.server.channels.history(SERVER, 'chat:room', offsets[19]!, 100);
    expect(tail.recovered).toBe(true);
    expect(tail.publications.map((p) => Number(p.data))).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
  });

  it('concurrent publishers on both nodes make one total order, seen identically by subscribers on each node', async () => {
    const c = cluster();
    const a = await c.node();
    const b = await c.node();
    const onA = await follow(client(a.url), 'doc:shared');
    const onB = await follow(client(b.url), 'doc:shared');
    const publishes: Promise<{ offset: number }>[] = [];
    for (let i = 0; i < 100; i++) {
      publishes.push(Promise.resolve(a.server.channels.publish(SERVER, 'doc:shared', JSON.stringify(`a${i}`), 'server')));
      publishes.push(Promise.resolve(b.server.channels.publish(SERVER, 'doc:shared', JSON.stringify(`b${i}`), 'server')));
    }
    const results = await Promise.all(publishes);
    expect(new Set(results.map((r) => r.offset)).size).toBe(200);
    await eventually(() => onA.data.length === 200 && onB.data.length === 200, 'all 200 on both nodes');
    expect(onA.data).toEqual(onB.data);
    expect(onA.offsets).toEqual(onB.offsets);
    expect(increasing(onA.offsets)).toBe(true);
    // Each node's own publishes keep their order.
    const fromA = onA.data.filter((d) => String(d).startsWith('a'));
    expect(fromA).toEqual([...Array(100).keys()].map((i) => `a${i}`));
    expect([...onA.offsets].sort((x, y) => x - y)).toEqual(results.map((r) => r.offset).sort((x, y) => x - y));
  });

  it('a client whose node stops reconnects to the other node and recovers with no gap and no duplicate', async () => {
    const c = cluster();
    const a = await c.node();
    const b = await c.node();
    const rt = client([a.url, b.url]);
    const got = await follow(rt, 'chat:failover');
    let n = 0;
    const pump = setInterval(() => {
      for (let i = 0; i < 5; i++) void b.server.channels.publish(SERVER, 'chat:failover', String(n++), 'server');
    }, 5);
    cleanups.push(() => clearInterval(pump));
    await eventually(() => got.data.length > 50, 'some messages through node A');
    await a.stop();
    await eventually(() => got.subscribed.length === 2, 'resubscribed on node B');
    await eventually(() => got.data.length > n - 5 && got.data.length > 200, 'more messages through node B');
    clearInterval(pump);
    const total = n;
    await eventually(() => got.data.length === total, `all ${total} messages`);
    expect(got.data).toEqual([...Array(total).keys()]);
    expect(increasing(got.offsets)).toBe(true);
    expect(got.subscribed[1]).toMatchObject({ recovered: true, resubscribed: true });
  });

  it('a node that starts a channel mid-stream recovers from an old offset while messages flow: exact, in order', async () => {
    const c = cluster();
    const a = await c.node();
    const b = await c.node();
    let n = 0;
    const offsets: number[] = [];
    const pump = setInterval(() => {
      for (let i = 0; i < 5; i++) {
        const value = n++;
        void Promise.resolve(a.server.channels.publish(SERVER, 'chat:mid', String(value), 'server')).then((r) => (offsets[value] = r.offset));
      }
    }, 2);
    cleanups.push(() => clearInterval(pump));
    await eventually(() => offsets.filter((o) => o !== undefined).length > 100, 'a hundred stored');
    // Node B has never seen the channel: it starts it while the pump runs, recovering after message 20.
    const rt = client(b.url);
    const got: number[] = [];
    const subs: SubscribedInfo[] = [];
    rt.subscribe<number>('chat:mid', (m) => got.push(m.data), { since: { offset: offsets[20]!, epoch: a.server.channels.position('chat:mid')!.epoch }, onSubscribed: (s) => subs.push(s) });
    await eventually(() => subs.length === 1, 'subscribed on B');
    await eventually(() => got.length > 200, 'live messages on B');
    clearInterval(pump);
    const total = n;
    await eventually(() => got.length === total - 21, `messages 21..${total - 1}`);
    expect(subs[0]!.recovered).toBe(true);
    expect(got).toEqual(Array.from({ length: total - 21 }, (_, i) => i + 21));
  });

  it('recovers a long history in batches, skipping the messages of other channels that share the stream', async () => {
    const c = cluster();
    const a = await c.node();
    const hub = a.server.channels;
    // Interleaved with another channel of the namespace: offsets of chat:long are not contiguous.
    const offsets: number[] = [];
    for (let i = 0; i < 600; i++) {
      const [mine] = await Promise.all([hub.publish(SERVER, 'chat:long', String(i), 'server'), hub.publish(SERVER, 'chat:noise', '"n"', 'server')]);
      offsets.push(mine.offset);
    }
    const b = await c.node();
    // Node B never saw the channel: its history read goes to the stream (one direct get, then batches).
    const from10 = await b.server.channels.history(SERVER, 'chat:long', offsets[9]!, 10_000);
    expect(from10.recovered).toBe(true);
    expect(from10.publications.map((p) => p.data)).toEqual(Array.from({ length: 590 }, (_, i) => String(i + 10)));
    expect(from10.publications.map((p) => p.offset)).toEqual(offsets.slice(10));
    // From "nothing yet": the whole channel, still only its own messages.
    const all = await b.server.channels.history(SERVER, 'chat:long', 0, 10_000);
    expect(all).toMatchObject({ recovered: true });
    expect(all.publications.map((p) => p.offset)).toEqual(offsets);
  });

  it('a recovery older than what the stream holds, from an offset the channel never had, or from another epoch says recovered:false', async () => {
    const c = cluster();
    const a = await c.node();
    const hub = a.server.channels;
    const first = await hub.publish(SERVER, 'tiny:gone', '1', 'server');
    const other = await hub.publish(SERVER, 'tiny:other', '0', 'server');
    for (let i = 2; i <= 4; i++) await hub.publish(SERVER, 'tiny:gone', String(i), 'server');
    // The stream keeps 2 messages of the channel: 3 and 4.
    const all = await hub.history(SERVER, 'tiny:gone', -1, 10);
    expect(all.publications.map((p) => p.data)).toEqual(['3', '4']);
    expect(await hub.history(SERVER, 'tiny:gone', first.offset, 10)).toMatchObject({ recovered: false, publications: [] });
    // `other.offset` belongs to another channel: what follows it here does not chain to it.
    expect(await hub.history(SERVER, 'tiny:gone', other.offset, 10)).toMatchObject({ recovered: false });
    expect(await hub.history(SERVER, 'tiny:gone', 1.5, 10)).toMatchObject({ recovered: false });
    // From 0 ("nothing yet"): recovered only while the channel's first message is still held.
    expect(await hub.history(SERVER, 'tiny:gone', 0, 10)).toMatchObject({ recovered: false });
    await hub.publish(SERVER, 'tiny:fresh', '"x"', 'server');
    expect(await hub.history(SERVER, 'tiny:fresh', 0, 10)).toMatchObject({ recovered: true, publications: [{ data: '"x"' }] });
    expect(await hub.history(SERVER, 'tiny:gone', all.publications[0]!.offset, 10)).toMatchObject({ recovered: true, publications: [{ data: '4' }] });
    const rt = client(a.url);
    const subs: SubscribedInfo[] = [];
    const got: unknown[] = [];
    rt.subscribe('tiny:gone', (m) => got.push(m.data), { since: { offset: first.offset, epoch: all.epoch }, onSubscribed: (s) => subs.push(s) });
    rt.subscribe('chat:x', () => undefined, { since: { offset: 0, epoch: 'another-epoch' }, onSubscribed: (s) => subs.push(s) });
    await eventually(() => subs.length === 2, 'subscribed');
    expect(subs.map((s) => s.recovered)).toEqual([false, false]);
    expect(got).toEqual([]);
  });

  it('foreign messages on a live subject are never delivered: a forged future offset makes the node check the stream, then it goes on', async () => {
    const c = cluster();
    const a = await c.node();
    const onA = await follow(client(a.url), 'chat:forged');
    const first = await a.server.channels.publish(SERVER, 'chat:forged', '1', 'server');
    await eventually(() => onA.data.length === 1, 'first message');
    const nc = await connect({ servers });
    cleanups.push(() => nc.close());
    const live = `$BRK.${a.engine.natsAccess().prefix}.chl.chat.chat:forged`;
    const h = headers();
    h.set('Nats-Sequence', String(first.offset + 1000));
    h.set('Nats-Last-Sequence', String(first.offset + 999));
    nc.publish(live, new TextEncoder().encode('"forged"'), { headers: h });
    nc.publish(live, new TextEncoder().encode('"no headers"'));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 100));
    await a.server.channels.publish(SERVER, 'chat:forged', '2', 'server');
    await eventually(() => onA.data.length === 2, 'the next real message');
    expect(onA.data).toEqual([1, 2]);
  });

  it('a node whose NATS connection drops misses live messages, finds the gap and fills it from the stream: every message once, in order', async () => {
    const { a, b, partitioned } = await splitPair();
    const onB = await follow(client(b.url), 'chat:gap');
    const publish = async (i: number): Promise<number> => (await a.server.channels.publish(SERVER, 'chat:gap', String(i), 'server')).offset;
    const offsets: number[] = [];
    for (let i = 0; i < 5; i++) offsets.push(await publish(i));
    await eventually(() => onB.data.length === 5, 'the first five on node B');
    expect(await metric(b, 'brook_channel_cluster_gaps_total')).toBe(0);

    // Node B's connection to NATS is cut: what A publishes now never reaches B's live subscription.
    await partitioned(async () => {
      for (let i = 5; i < 15; i++) offsets.push(await publish(i));
    });
    expect(onB.data).toHaveLength(5);

    // The next live message does not follow what B delivered last: B reads the ten from the stream.
    offsets.push(await publish(15));
    await eventually(() => onB.data.length === 16, 'all sixteen on node B');
    expect(onB.data).toEqual([...Array(16).keys()]);
    expect(onB.offsets).toEqual(offsets);
    expect(await metric(b, 'brook_channel_cluster_gaps_total')).toBeGreaterThanOrEqual(1);
    expect(await metric(b, 'brook_channel_cluster_filled_messages_total')).toBeGreaterThanOrEqual(10);
    expect(await metric(b, 'brook_channel_cluster_holes_total')).toBe(0); // the stream still held them
    expect(await metric(b, 'brook_channel_cluster_live_messages_total')).toBeGreaterThanOrEqual(6);
    expect(await metric(a, 'brook_channel_cluster_gaps_total')).toBe(0);
  });

  it('a fill whose stream reads fail is tried again, so the gap closes without waiting for the next live message', async () => {
    const { a, b, partitioned } = await splitPair();
    const onB = await follow(client(b.url), 'chat:refill');
    const publish = async (i: number): Promise<number> => (await a.server.channels.publish(SERVER, 'chat:refill', String(i), 'server')).offset;
    for (let i = 0; i < 3; i++) await publish(i);
    await eventually(() => onB.data.length === 3, 'the first three on node B');
    // B misses three messages while its NATS connection is cut.
    await partitioned(async () => {
      for (let i = 3; i < 6; i++) await publish(i);
    });

    // The next live message shows B the gap; its first two attempts to read the stream fail.
    const backplane = (b.server.channels as unknown as { cluster: { readFrom: (...args: unknown[]) => Promise<unknown> } }).cluster;
    const readFrom = backplane.readFrom;
    let failures = 0;
    backplane.readFrom = function (this: unknown, ...args: unknown[]) {
      if (failures < 2) {
        failures++;
        return Promise.reject(Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' }));
      }
      return readFrom.apply(this, args);
    };
    cleanups.push(() => {
      backplane.readFrom = readFrom;
    });
    await publish(6); // the last message: nothing live follows it
    await eventually(() => onB.data.length === 7, 'all seven on node B');
    expect(failures).toBe(2);
    expect(onB.data).toEqual([...Array(7).keys()]);
  });

  it('topic channels read the shared log: produced through node A, received on node B', async () => {
    const c = cluster();
    const a = await c.node();
    const b = await c.node();
    await a.engine.createTopic('orders', { partitions: 1 });
    const onB = await follow(client(b.url), 'topic:orders');
    await a.engine.append('orders', 0, [1, 2, 3].map((i) => ({ key: null, value: Buffer.from(JSON.stringify({ i })) })));
    await eventually(() => onB.data.length === 3, 'three records on node B');
    expect(onB.data).toEqual([{ i: 1 }, { i: 2 }, { i: 3 }]);
  });

  it('presence across nodes: a join on A is listed and announced on B; the entries of a node that dies expire within the TTL', async () => {
    const c = cluster();
    const a = await c.node();
    const b = await c.node();
    const rtB = client(b.url);
    const joins: string[] = [];
    const leaves: string[] = [];
    const subs: SubscribedInfo[] = [];
    rtB.subscribe('chat:p', () => undefined, { onJoin: (p) => joins.push(p.client), onLeave: (p) => leaves.push(p.client), onSubscribed: (s) => subs.push(s) });
    await eventually(() => subs.length === 1, 'B subscribed');
    const rtA = client(a.url);
    await follow(rtA, 'chat:p');
    const idA = rtA.client!;
    const idB = rtB.client!;
    await eventually(() => joins.includes(idA), 'the join of the client on A, announced on B');
    await eventually(() => b.server.channels.presence(SERVER, 'chat:p').count === 2, 'two entries listed on B');
    expect(a.server.channels.presence(SERVER, 'chat:p').clients.map((e) => e.client).sort()).toEqual([idA, idB].sort());
    expect((await rtB.presence('chat:p')).count).toBe(2);
    expect(await metric(b, 'brook_channel_cluster_presence_entries')).toBe(2);
    // Node A loses NATS as if killed: nothing it does from now on reaches the cluster.
    await a.engine.close();
    await a.stop();
    await eventually(() => b.server.channels.presence(SERVER, 'chat:p').count === 1, 'the entry of dead node A expired', PRESENCE_TTL_MS * 4);
    expect(b.server.channels.presence(SERVER, 'chat:p').clients.map((e) => e.client)).toEqual([idB]);
    await eventually(() => leaves.includes(idA), 'the leave announced on B');
  });

  it('refuses channels.cluster on an engine without a backplane', async () => {
    const dir = await tempDir('brook-chcluster-');
    cleanups.push(dir.remove);
    const engine = new EmbeddedEngine({ dataDir: dir.path, logger: pino({ level: 'silent' }) });
    await engine.open();
    cleanups.push(() => engine.close());
    await expect(
      createServer({ engine, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), channels: { cluster: 'jetstream' } }),
    ).rejects.toThrow(/needs the JetStream engine/);
    await expect(
      createServer({ engine, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), channels: { presenceTtlMs: 5_000 } }),
    ).rejects.toThrow(/presenceTtlMs needs channels.cluster/);
  });

  it('refuses a presence TTL out of bounds', async () => {
    const prefix = `BC${randomBytes(5).toString('hex')}`;
    const engine = new JetStreamEngine({ servers, prefix });
    await engine.open();
    cleanups.push(() => engine.destroy());
    for (const presenceTtlMs of [999, 86_400_001, 1_500.5]) {
      await expect(
        createServer({ engine, host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), channels: { cluster: 'jetstream', presenceTtlMs } }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });
});

describe('RealtimeClient with several URLs', () => {
  it('refuses an empty list and a bad URL anywhere in the list, at construction', () => {
    const WS = WebSocket as unknown as WebSocketConstructor;
    expect(() => new RealtimeClient({ url: [], WebSocket: WS })).toThrow(/at least one server/);
    expect(() => new RealtimeClient({ url: ['http://127.0.0.1:1', 'ftp://x'], WebSocket: WS })).toThrow(/http\(s\) or ws\(s\)/);
  });
});
