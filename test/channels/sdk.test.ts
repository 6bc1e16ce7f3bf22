/**
 * The SDK's RealtimeClient in Node (the `ws` package as its WebSocket) against a real server:
 * subscribe and receive, automatic recovery after the network drops mid-stream (no gap, no
 * duplicate), recovery of a durable channel across a server restart, recovered:false after a
 * memory channel's restart, presence, publish errors, token refresh.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RealtimeClient, type SubscribedInfo } from '../../src/client/index.js';
import type { WebSocketConstructor } from '../../src/client/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { hs256, SECRET } from '../server/tokens.js';
import { eventually } from '../ws/setup.js';
import { CuttableProxy, startBrook, type RunningBrook } from './helpers.js';

const NAMESPACES = [
  { name: 'chat', history: { size: 1000, ttlMs: 60_000 }, presence: true, joinLeave: true },
  { name: 'doc', history: { size: 1000, ttlMs: 60_000, durable: true } },
];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function brook(options: Parameters<typeof startBrook>[1] = {}): Promise<{ b: RunningBrook; dir: string; proxy: CuttableProxy }> {
  const dir = await tempDir('brook-sdk-rt-');
  cleanups.push(dir.remove);
  const b = await startBrook(dir.path, { channels: { namespaces: NAMESPACES }, ...options });
  const holder = { b };
  cleanups.push(() => holder.b.stop());
  const proxy = await CuttableProxy.start(b.server.port);
  cleanups.push(() => proxy.close());
  return { b, dir: dir.path, proxy };
}

function client(url: string, extra: Partial<ConstructorParameters<typeof RealtimeClient>[0]> = {}): RealtimeClient {
  const c = new RealtimeClient({ url, WebSocket: WebSocket as unknown as WebSocketConstructor, reconnect: { baseMs: 20, capMs: 200 }, ...extra });
  cleanups.push(() => c.close());
  return c;
}

const SERVER = { user: '', unrestricted: true, capabilities: [] } as const;

describe('RealtimeClient', () => {
  it('subscribes, receives in order, publishes, and recovers across a dropped connection without gap or duplicate', async () => {
    const { b, proxy } = await brook();
    const rt = client(proxy.url);
    const got: number[] = [];
    const subscribed: SubscribedInfo[] = [];
    const states: string[] = [];
    rt.on('state', (s) => states.push(s));
    rt.subscribe<number>('chat:live', (m) => got.push(m.data), { onSubscribed: (s) => subscribed.push(s) });
    await eventually(() => subscribed.length === 1, 'subscribed');
    expect(await rt.publish('chat:live', 0)).toMatchObject({ offset: 0 });
    // A steady stream from the server while the network drops twice.
    let n = 1;
    const pump = setInterval(() => {
      for (let i = 0; i < 5; i++) b.server.channels.publish(SERVER, 'chat:live', String(n++), 'server');
    }, 5);
    await eventually(() => got.length > 50, 'some messages');
    proxy.cut();
    await eventually(() => subscribed.length === 2, 'resubscribed');
    await eventually(() => got.length > 200, 'more messages');
    proxy.cut();
    await eventually(() => subscribed.length === 3, 'resubscribed again');
    clearInterval(pump);
    const total = n;
    await eventually(() => got.length === total, `all ${total} messages`);
    expect(got).toEqual([...Array(total).keys()]);
    expect(subscribed.slice(1).every((s) => s.recovered === true && s.resubscribed)).toBe(true);
    expect(states).toContain('disconnected');
  });

  it('recovers a durable channel across a server restart; a memory channel says recovered:false', async () => {
    const { b, dir, proxy } = await brook();
    const rt = client(proxy.url);
    const doc: number[] = [];
    const chat: number[] = [];
    const docSubs: SubscribedInfo[] = [];
    const chatSubs: SubscribedInfo[] = [];
    rt.subscribe<number>('doc:1', (m) => doc.push(m.data), { onSubscribed: (s) => docSubs.push(s) });
    rt.subscribe<number>('chat:1', (m) => chat.push(m.data), { onSubscribed: (s) => chatSubs.push(s) });
    await eventually(() => docSubs.length === 1 && chatSubs.length === 1, 'subscribed');
    for (let i = 0; i < 10; i++) {
      await b.server.channels.publish(SERVER, 'doc:1', String(i), 'server');
      await b.server.channels.publish(SERVER, 'chat:1', String(i), 'server');
    }
    await eventually(() => doc.length === 10 && chat.length === 10, 'first ten');
    await b.stop();
    const b2 = await startBrook(dir, { channels: { namespaces: NAMESPACES } });
    cleanups.push(() => b2.stop());
    proxy.targetPort = b2.server.port;
    // Published while the client is away (it reconnects with backoff meanwhile).
    for (let i = 10; i < 15; i++) await b2.server.channels.publish(SERVER, 'doc:1', String(i), 'server');
    await eventually(() => docSubs.length === 2 && chatSubs.length === 2, 'resubscribed after the restart', 20_000);
    await b2.server.channels.publish(SERVER, 'doc:1', '15', 'server');
    await eventually(() => doc.length === 16, 'recovered and live');
    expect(doc).toEqual([...Array(16).keys()]);
    expect(docSubs[1]).toMatchObject({ recovered: true, epoch: docSubs[0]!.epoch });
    expect(chatSubs[1]!.recovered).toBe(false);
    expect(chatSubs[1]!.epoch).not.toBe(chatSubs[0]!.epoch);
  });

  it('resumes from a saved position (a page reload), reads history, and refuses calls once closed', async () => {
    const { b, proxy } = await brook();
    let saved = { offset: -1, epoch: '' };
    for (let i = 0; i < 5; i++) saved = await b.server.channels.publish(SERVER, 'chat:saved', String(i), 'server');
    const first = client(proxy.url);
    const got: number[] = [];
    const subs: SubscribedInfo[] = [];
    first.subscribe<number>('chat:saved', (m) => got.push(m.data), { since: { offset: 1, epoch: saved.epoch }, onSubscribed: (s) => subs.push(s) });
    await eventually(() => got.length === 3, 'the missed three');
    expect(got).toEqual([2, 3, 4]);
    expect(subs[0]).toMatchObject({ recovered: true, missed: 3, resubscribed: false });
    const h = await first.history('chat:saved', { since: 2, limit: 10 });
    expect(h).toMatchObject({ recovered: true, offset: 4, epoch: saved.epoch });
    expect(h.publications.map((p) => p.data)).toEqual([3, 4]);
    first.close();
    expect(first.state).toBe('closed');
    await expect(first.publish('chat:saved', 1)).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  it('refreshes a short-lived token before it expires, so the connection is never closed with 4010', async () => {
    const { proxy } = await brook({ auth: { secret: SECRET }, channels: { namespaces: NAMESPACES, realtime: { heartbeatMs: 100 } } });
    let issued = 0;
    const rt = client(proxy.url, {
      token: () => {
        issued++;
        return hs256({ sub: 'r', channels: [{ match: 'chat:*', allow: ['subscribe'] }] }, { exp: Math.floor(Date.now() / 1000) + 3 });
      },
      refreshBeforeExpiryMs: 1_500,
    });
    const closes: number[] = [];
    rt.on('disconnected', (e) => closes.push(e.code));
    rt.subscribe('chat:r', () => undefined);
    await rt.connect();
    await eventually(() => issued >= 4, 'several refreshes', 20_000);
    expect(closes).toEqual([]);
    expect(rt.state).toBe('connected');
  });

  it('presence, join/leave, errors for refused subscriptions and publishes, token refresh', async () => {
    const { proxy } = await brook({ auth: { secret: SECRET } });
    const caps = [{ match: 'chat:*', allow: ['subscribe', 'publish', 'presence'] }];
    const annToken = await hs256({ sub: 'ann', channels: caps, info: { name: 'Ann' } });
    let refreshed = 0;
    const ann = client(proxy.url, {
      token: async () => {
        refreshed++;
        return annToken;
      },
    });
    const bob = client(proxy.url, { token: await hs256({ sub: 'bob', channels: caps }) });
    const joins: string[] = [];
    const leaves: string[] = [];
    const errors: string[] = [];
    ann.subscribe('chat:room', () => undefined, { onJoin: (w) => joins.push(w.user), onLeave: (w) => leaves.push(w.user) });
    ann.subscribe('doc:secret', () => undefined, { onError: (e) => errors.push(e.code) });
    await eventually(() => errors.length === 1, 'refusal');
    expect(errors).toEqual(['FORBIDDEN']);
    const sub = bob.subscribe('chat:room', () => undefined);
    await eventually(() => joins.includes('bob'), 'bob joins');
    const p = await bob.presence('chat:room');
    expect(p.count).toBe(2);
    expect(p.clients.find((c) => c.user === 'ann')?.info).toEqual({ name: 'Ann' });
    sub.unsubscribe();
    await eventually(() => leaves.includes('bob'), 'bob leaves');
    await expect(ann.publish('doc:1', 1)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await ann.refreshToken();
    expect(refreshed).toBeGreaterThanOrEqual(2);
  });
});
