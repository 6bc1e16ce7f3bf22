/**
 * `/v1/realtime`, SSE and the channel HTTP routes against a real server (embedded engine, loopback,
 * port 0): subscribe/publish, recovery after a dropped connection, bad frames, auth, presence with
 * dead-connection removal, slow-client eviction, rate and connection limits, token refresh.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { bearer, hs256, SECRET } from '../server/tokens.js';
import { eventually, setup, WsClient, type Frame, type WsSetupOptions, type WsTestServer } from '../ws/setup.js';

const servers: WsTestServer[] = [];
const clients: WsClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const s of servers.splice(0)) await s.cleanup();
});

const NAMESPACES = [
  { name: 'chat', history: { size: 100, ttlMs: 60_000 }, presence: true, joinLeave: true },
  { name: 'feed', history: { size: 100, ttlMs: 60_000 }, slowClient: 'skip' as const },
  { name: 'user', history: { size: 10 } },
  { name: 'srv', history: { size: 10 }, clientPublish: false },
];

async function start(options: WsSetupOptions = {}): Promise<WsTestServer> {
  const t = await setup({ ...options, channels: { namespaces: NAMESPACES, ...options.channels } });
  servers.push(t);
  return t;
}

async function connect(t: WsTestServer, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(`${t.url.replace('http://', 'ws://')}/v1/realtime${query}`, { protocols: 'brook.realtime.v1' });
  clients.push(c);
  return c;
}

function pubs(c: WsClient, channel: string): { offset: number; data: unknown }[] {
  return c.frames.filter((f) => f.type === 'pub' && f['channel'] === channel).map((f) => ({ offset: f['offset'] as number, data: f['data'] }));
}

async function post(t: WsTestServer, channel: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.url}/v1/channels/${encodeURIComponent(channel)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('/v1/realtime', () => {
  it('welcomes, subscribes to many channels, delivers publishes from WebSocket and HTTP in offset order', async () => {
    const t = await start();
    const a = await connect(t);
    const welcome = await a.waitFor((f) => f.type === 'welcome');
    expect(welcome['client']).toMatch(/^c/);
    const sub = await a.request({ type: 'subscribe', channels: [{ channel: 'chat:1' }, { channel: 'chat:2' }] });
    expect(sub).toMatchObject({ type: 'subscribed', results: [{ channel: 'chat:1', offset: -1 }, { channel: 'chat:2', offset: -1 }] });
    const b = await connect(t);
    const published = await b.request({ type: 'publish', channel: 'chat:1', data: { text: 'hi' } });
    expect(published).toMatchObject({ type: 'published', offset: 0, epoch: (sub['results'] as { epoch: string }[])[0]!.epoch });
    const viaHttp = await post(t, 'chat:1', { data: [1, 2] });
    expect(viaHttp).toEqual({ status: 200, body: { offset: 1, epoch: published['epoch'] } });
    await post(t, 'chat:2', { data: 'two' });
    await a.waitFor((f) => f.type === 'pub' && f['channel'] === 'chat:2');
    expect(pubs(a, 'chat:1')).toEqual([
      { offset: 0, data: { text: 'hi' } },
      { offset: 1, data: [1, 2] },
    ]);
    const raw = a.frames.find((f) => f.type === 'pub')!;
    expect(Object.keys(raw)).toEqual(['type', 'channel', 'data', 'offset']);
    await a.request({ type: 'unsubscribe', channels: ['chat:1'] });
    await post(t, 'chat:1', { data: 'after' });
    await post(t, 'chat:2', { data: 'marker' });
    await a.waitFor((f) => f.type === 'pub' && f['data'] === 'marker');
    expect(pubs(a, 'chat:1')).toHaveLength(2);
    expect(await a.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(await a.request({ type: 'publish', channel: 'srv:x', data: 1 })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect((await post(t, 'srv:x', { data: 1 })).status).toBe(200);
  });

  it('recovers exactly the missed messages after a dropped connection, then continues live without gap or duplicate', async () => {
    const t = await start();
    const a = await connect(t);
    const sub = await a.request({ type: 'subscribe', channels: [{ channel: 'chat:r' }] });
    const epoch = (sub['results'] as { epoch: string }[])[0]!.epoch;
    for (let i = 0; i < 5; i++) await post(t, 'chat:r', { data: i });
    await eventually(() => pubs(a, 'chat:r').length === 5, '5 messages');
    a.ws.terminate();
    for (let i = 5; i < 9; i++) await post(t, 'chat:r', { data: i });
    const again = await connect(t);
    const last = pubs(a, 'chat:r').at(-1)!.offset;
    const r = await again.request({ type: 'subscribe', channels: [{ channel: 'chat:r', since: { offset: last, epoch } }] });
    expect(r['results']).toEqual([{ channel: 'chat:r', offset: 8, epoch, recovered: true, missed: 4 }]);
    await post(t, 'chat:r', { data: 9 });
    await eventually(() => pubs(again, 'chat:r').length === 5, 'recovered + live');
    expect(pubs(again, 'chat:r').map((p) => p.data)).toEqual([5, 6, 7, 8, 9]);
    const lost = await again.request({ type: 'subscribe', channels: [{ channel: 'chat:r', since: { offset: 3, epoch: 'gone' } }] });
    expect(lost['results']).toMatchObject([{ recovered: false, offset: 9 }]);
  });

  it('answers bad frames and unknown channels with clear errors and closes after too many bad frames', async () => {
    const t = await start();
    const a = await connect(t);
    a.send('not json');
    expect(await a.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'INVALID_FRAME', message: 'frame is not valid JSON' });
    expect(await a.request({ type: 'nope' })).toMatchObject({ type: 'error', code: 'INVALID_FRAME' });
    expect(await a.request({ type: 'subscribe', channels: [] })).toMatchObject({ code: 'INVALID_FRAME', message: expect.stringContaining('channels') as unknown });
    a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await a.waitFor((f) => f.type === 'error' && String(f['message']).includes('binary'));
    const r = await a.request({ type: 'subscribe', channels: [{ channel: 'nowhere:1' }, { channel: 'chat:bad name' }, { channel: 'chat:ok' }] });
    expect(r['results']).toMatchObject([
      { channel: 'nowhere:1', error: { code: 'UNKNOWN_CHANNEL' } },
      { channel: 'chat:bad name', error: { code: 'INVALID_CHANNEL' } },
      { channel: 'chat:ok', offset: -1 },
    ]);
    expect(await a.request({ type: 'publish', channel: 'nowhere:1', data: 1 })).toMatchObject({ code: 'UNKNOWN_CHANNEL' });
    expect((await post(t, 'nowhere:1', { data: 1 })).body).toMatchObject({ error: { code: 'UNKNOWN_CHANNEL' } });
    expect((await post(t, 'chat:1', { nodata: 1 })).status).toBe(400);
    expect((await post(t, 'chat:1', '{')).status).toBe(400);
    for (let i = 0; i < 12; i++) a.send('{');
    expect((await a.closed).code).toBe(4000);
    const http = await fetch(`${t.url}/v1/channels/chat%3A1/history?since=abc`);
    expect(http.status).toBe(400);
  });

  it('keeps a healthy subscriber on time while a stalled one is disconnected with the resumable 4004', async () => {
    const t = await start({ channels: { realtime: { maxQueuedBytes: 256 * 1024, maxQueuedMessages: 10_000 } } });
    const healthy = await connect(t);
    const stalled = await connect(t);
    await healthy.request({ type: 'subscribe', channels: [{ channel: 'chat:big' }] });
    await stalled.request({ type: 'subscribe', channels: [{ channel: 'chat:big' }] });
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const payload = 'x'.repeat(16 * 1024);
    const total = 1500; // 24 MB: more than the loopback socket buffers can absorb
    // In small bursts, as a real publisher would: the healthy client keeps up, the stalled one cannot.
    for (let i = 0; i < total; i += 10) {
      for (let j = i; j < i + 10; j++) t.server.channels.publish({ user: '', unrestricted: true, capabilities: [] }, 'chat:big', JSON.stringify(payload), 'server');
      await eventually(() => pubs(healthy, 'chat:big').length === i + 10, 'the healthy client to keep up');
    }
    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await stalled.closed;
    expect(closed.code).toBe(4004);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('brook_realtime_closed_total{reason="SLOW_CLIENT"} 1');
    expect(metrics).toMatch(/brook_channel_subscriptions \d+/);
    expect(pubs(healthy, 'chat:big').map((p) => p.offset)).toEqual([...Array(total).keys()]);
  });

  it('a burst of more publications in one tick than maxQueuedMessages reaches a subscriber that keeps up', async () => {
    const t = await start({ channels: { realtime: { maxQueuedBytes: 8 * 1024 * 1024, maxQueuedMessages: 30 } } });
    const c = await connect(t);
    await c.request({ type: 'subscribe', channels: [{ channel: 'chat:burst' }] });
    const burst = 200; // one event-loop turn, as a topic tailer catching up or a big transaction publishes
    for (let i = 0; i < burst; i++) t.server.channels.publish({ user: '', unrestricted: true, capabilities: [] }, 'chat:burst', String(i), 'server');
    await eventually(() => pubs(c, 'chat:burst').length === burst || c.ws.readyState !== WebSocket.OPEN, 'the burst or a close');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(pubs(c, 'chat:burst').map((p) => p.data)).toEqual([...Array(burst).keys()]);
  });

  it('a subscriber whose socket backs up briefly and then empties is never closed as slow, however often it happens', async () => {
    // Each episode backs up fewer frames than maxQueuedMessages and keeps the server's write
    // buffer under its high-water mark, so Node never emits 'drain'; the count must still restart
    // once the buffer is empty, or short episodes add up to a 4004 for a client that keeps up.
    const limit = 30;
    const perTick = 8; // 8 × 1 KB per flush: under the 16 KB high-water mark
    const t = await start({ channels: { realtime: { maxQueuedBytes: 8 * 1024 * 1024, maxQueuedMessages: limit } } });
    const c = await connect(t);
    await c.request({ type: 'subscribe', channels: [{ channel: 'chat:bursty' }] });
    const hub = t.server.channels as unknown as { channels: Map<string, { subscribers: Set<{ socket: { writableLength: number } }> }> };
    const server = [...hub.channels.get('chat:bursty')!.subscribers][0]!.socket;
    const client = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    const data = JSON.stringify('x'.repeat(1000));
    const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    let published = 0;
    const episodes = 6; // 6 × 8 > 30: enough for stale counts to pass the limit
    for (let e = 0; e < episodes; e++) {
      client.pause();
      // Fill the kernel buffers until one flush is left partly in the server's write buffer.
      for (let i = 0; i < 100_000 && server.writableLength === 0; i++) {
        for (let j = 0; j < perTick; j++) t.server.channels.publish({ user: '', unrestricted: true, capabilities: [] }, 'chat:bursty', data, 'server');
        published += perTick;
        await tick();
        await tick();
      }
      expect(server.writableLength).toBeGreaterThan(0);
      expect(server.writableLength).toBeLessThan(16 * 1024);
      client.resume();
      await eventually(() => pubs(c, 'chat:bursty').length === published, 'the client to read everything', 20_000);
      await eventually(() => server.writableLength === 0, 'the server buffer to empty');
    }
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(pubs(c, 'chat:bursty').map((p) => p.offset)).toEqual([...Array(published).keys()]);
  });

  it('stops reading a client that sends requests without reading the answers, and resumes once it reads', async () => {
    const t = await start({ channels: { realtime: { maxQueuedBytes: 64 * 1024 } } });
    const deaf = await connect(t);
    await deaf.waitFor((f) => f.type === 'welcome');
    const socket = (deaf.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const id = 'x'.repeat(200);
    const frames = 100_000; // ~24 MB of answers: more than the socket buffers on both sides hold
    for (let i = 0; i < frames; i++) deaf.send({ type: 'ping', id });
    // The server stopped reading, so our own writes stay backed up behind it (no longer shrinking).
    await eventually(
      async () => {
        const before = deaf.ws.bufferedAmount;
        await new Promise((resolve) => setTimeout(resolve, 300));
        return before > 1024 * 1024 && deaf.ws.bufferedAmount === before;
      },
      'our writes to stay backed up',
      20_000,
    );
    socket.resume();
    await eventually(() => deaf.frames.filter((f) => f.type === 'pong').length === frames, 'every answer once we read', 60_000);
    expect(deaf.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('skip policy: a lagging subscriber is told recovered:false with the current offset and continues', async () => {
    const t = await start({ channels: { realtime: { maxQueuedBytes: 64 * 1024, maxQueuedMessages: 10_000 } } });
    const lagging = await connect(t);
    await lagging.request({ type: 'subscribe', channels: [{ channel: 'feed:x' }] });
    (lagging.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const payload = JSON.stringify('y'.repeat(16 * 1024));
    for (let i = 0; i < 1000; i++) t.server.channels.publish({ user: '', unrestricted: true, capabilities: [] }, 'feed:x', payload, 'server');
    (lagging.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const skipped = await lagging.waitFor((f) => f.type === 'skipped', 30_000);
    expect(skipped).toMatchObject({ channel: 'feed:x', offset: 999, recovered: false });
    expect(pubs(lagging, 'feed:x').length).toBeLessThan(1000);
    await post(t, 'feed:x', { data: 'live' });
    await lagging.waitFor((f) => f.type === 'pub' && f['offset'] === 1000);
    expect(lagging.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('/v1/realtime with auth', () => {
  const auth = { auth: { secret: SECRET } };

  it('refuses a missing token with 1008, checks capabilities, isolates user channels, limits per-user connections', async () => {
    const t = await start({ ...auth, channels: { realtime: { maxConnectionsPerUser: 2 } } });
    const anon = await connect(t);
    expect((await anon.closed).code).toBe(1008);
    const ann = await hs256({ sub: 'ann', channels: [{ match: 'chat:*', allow: ['subscribe', 'publish'] }] });
    const a = await connect(t, `?token=${ann}`);
    const r = await a.request({ type: 'subscribe', channels: [{ channel: 'chat:1' }, { channel: 'user:#ann' }, { channel: 'user:#bob' }, { channel: 'feed:1' }] });
    expect(r['results']).toMatchObject([
      { channel: 'chat:1', offset: -1 },
      { channel: 'user:#ann', offset: -1 },
      { channel: 'user:#bob', error: { code: 'FORBIDDEN' } },
      { channel: 'feed:1', error: { code: 'FORBIDDEN' } },
    ]);
    expect(await a.request({ type: 'presence', channel: 'chat:1' })).toMatchObject({ code: 'FORBIDDEN' });
    const server = await hs256({ sub: 'backend', channels: [{ match: '*', allow: ['publish'] }] });
    expect((await post(t, 'user:#ann', { data: 'for ann' }, bearer(server))).status).toBe(200);
    expect((await post(t, 'user:#ann', { data: 'x' }, bearer(ann))).status).toBe(403);
    expect((await post(t, 'user:#ann', { data: 'x' })).status).toBe(401);
    await a.waitFor((f) => f.type === 'pub' && f['data'] === 'for ann');
    await connect(t, `?token=${ann}`);
    const third = await connect(t, `?token=${ann}`);
    expect((await third.closed).code).toBe(4009);
  });

  it('a topic channel needs the topic read permission as well as the channel capability', async () => {
    const t = await start({ ...auth, channels: { namespaces: [{ name: 'topic', source: 'topic' }] } });
    await t.engine.createTopic('orders', { partitions: 1 });
    await t.engine.createTopic('payroll', { partitions: 1 });
    const token = await hs256({ sub: 'u', channels: [{ match: 'topic:*', allow: ['subscribe'] }], permissions: [{ topics: 'orders', actions: ['read'] }] });
    const a = await connect(t, `?token=${token}`);
    const r = await a.request({ type: 'subscribe', channels: [{ channel: 'topic:orders' }, { channel: 'topic:payroll' }] });
    expect(r['results']).toMatchObject([{ channel: 'topic:orders', epoch: 't0' }, { channel: 'topic:payroll', error: { code: 'FORBIDDEN' } }]);
    await t.engine.produce('orders', [{ value: new TextEncoder().encode('{"id":1}') }]);
    expect(await a.waitFor((f) => f.type === 'pub')).toMatchObject({ channel: 'topic:orders', offset: 0, data: { id: 1 } });
  });

  it('rate-limits publishes per connection with a token bucket', async () => {
    const t = await start({ ...auth, channels: { realtime: { publishBurst: 3, publishRate: 1 } } });
    const token = await hs256({ sub: 'p', channels: [{ match: 'chat:*', allow: ['publish'] }] });
    const a = await connect(t, `?token=${token}`);
    for (let i = 0; i < 3; i++) expect(await a.request({ type: 'publish', channel: 'chat:1', data: i })).toMatchObject({ type: 'published' });
    const refused = await a.request({ type: 'publish', channel: 'chat:1', data: 3 });
    expect(refused).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
    expect(refused['retry_after_ms']).toBeGreaterThan(0);
  });

  it('refresh: a token that no longer allows a channel ends that subscription; another user is refused', async () => {
    const t = await start(auth);
    const both = await hs256({ sub: 'ann', channels: [{ match: 'chat:*', allow: ['subscribe'] }, { match: 'feed:*', allow: ['subscribe'] }] });
    const a = await connect(t, `?token=${both}`);
    await a.request({ type: 'subscribe', channels: [{ channel: 'chat:1' }, { channel: 'feed:1' }] });
    const narrower = await hs256({ sub: 'ann', channels: [{ match: 'chat:*', allow: ['subscribe'] }] });
    expect(await a.request({ type: 'refresh', token: narrower })).toMatchObject({ type: 'refreshed' });
    expect(a.frames.find((f) => f.type === 'unsub')).toMatchObject({ channel: 'feed:1', code: 'FORBIDDEN' });
    const bob = await hs256({ sub: 'bob', channels: [{ match: '*', allow: ['subscribe'] }] });
    expect(await a.request({ type: 'refresh', token: bob })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await a.request({ type: 'refresh', token: 'garbage' })).toMatchObject({ type: 'error', code: 'UNAUTHORIZED' });
  });

  it('presence: join/leave with token info, and a dead connection leaves within the idle timeout', async () => {
    const t = await start({ ...auth, channels: { realtime: { heartbeatMs: 100 } } });
    const caps = [{ match: 'chat:*', allow: ['subscribe', 'presence'] }];
    const a = await connect(t, `?token=${await hs256({ sub: 'ann', channels: caps, info: { name: 'Ann' } })}`);
    const b = await connect(t, `?token=${await hs256({ sub: 'bob', channels: caps })}`);
    await a.request({ type: 'subscribe', channels: [{ channel: 'chat:p' }] });
    await b.request({ type: 'subscribe', channels: [{ channel: 'chat:p' }] });
    const join = await a.waitFor((f) => f.type === 'join' && f['user'] === 'bob');
    expect(join).toMatchObject({ channel: 'chat:p' });
    const p = await b.request({ type: 'presence', channel: 'chat:p' });
    expect(p).toMatchObject({ count: 2 });
    expect((p['clients'] as Frame[]).find((c) => c['user'] === 'ann')).toMatchObject({ info: { name: 'Ann' } });
    // b goes silent without closing: no reads, so no pongs.
    (b.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await a.waitFor((f) => f.type === 'leave' && f['user'] === 'bob', 5_000);
    expect(await a.request({ type: 'presence', channel: 'chat:p' })).toMatchObject({ count: 1 });
  });
});

describe('SSE /v1/channels/{channel}/events', () => {
  interface SseEvent {
    id?: string;
    event?: string;
    data: string;
  }
  function open(url: string, headers: Record<string, string> = {}): Promise<{ res: IncomingMessage; events: SseEvent[]; comments: number; close(): void }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        const out = { res, events: [] as SseEvent[], comments: 0, close: () => req.destroy() };
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const ev: SseEvent = { data: '' };
            let isEvent = false;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) out.comments++;
              else if (line.startsWith('id: ')) ev.id = line.slice(4);
              else if (line.startsWith('event: ')) ev.event = line.slice(7);
              else if (line.startsWith('data: ')) {
                ev.data = line.slice(6);
                isEvent = true;
              }
            }
            if (isEvent) out.events.push(ev);
          }
        });
        resolve(out);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('streams id/data events, resumes after Last-Event-ID, sends keepalive comments', async () => {
    const t = await start({ channels: { realtime: { sseKeepaliveMs: 50 } } });
    for (let i = 0; i < 3; i++) await post(t, 'chat:s', { data: { i } });
    const s = await open(`${t.url}/v1/channels/chat%3As/events?since=-1`);
    expect(s.res.headers['content-type']).toMatch(/^text\/event-stream/);
    const messages = (e: { events: SseEvent[] }): SseEvent[] => e.events.filter((ev) => ev.event === undefined);
    await eventually(() => messages(s).length >= 3, '3 events');
    expect(s.events[0]!.event).toBe('subscribed');
    expect(JSON.parse(s.events[0]!.data)).toMatchObject({ channel: 'chat:s', offset: 2, recovered: true });
    expect(s.events.find((e) => e.event === 'join')).toBeDefined();
    expect(messages(s)).toEqual([
      { id: '0', data: '{"i":0}' },
      { id: '1', data: '{"i":1}' },
      { id: '2', data: '{"i":2}' },
    ]);
    await eventually(() => s.comments > 0, 'a keepalive comment');
    s.close();
    await post(t, 'chat:s', { data: { i: 3 } });
    const resumed = await open(`${t.url}/v1/channels/chat%3As/events`, { 'last-event-id': '1' });
    await eventually(() => messages(resumed).length >= 2, 'resumed events');
    expect(messages(resumed).map((e) => e.id)).toEqual(['2', '3']);
    resumed.close();
    const unknown = await fetch(`${t.url}/v1/channels/nowhere%3A1/events`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'UNKNOWN_CHANNEL' } });
    await eventually(() => t.server.realtime.sseStreams === 0, 'streams gone');
  });

  it('the subscribed event carries an id, so a drop before the first message still resumes without loss', async () => {
    const t = await start();
    await post(t, 'chat:early', { data: 'before' });
    await post(t, 'chat:early', { data: 'before too' });
    const s = await open(`${t.url}/v1/channels/chat%3Aearly/events`);
    await eventually(() => s.events.some((e) => e.event === 'subscribed'), 'subscribed');
    const subscribed = s.events.find((e) => e.event === 'subscribed')!;
    expect(subscribed.id).toBe('1');
    s.close();
    await post(t, 'chat:early', { data: 'while away' });
    const again = await open(`${t.url}/v1/channels/chat%3Aearly/events`, { 'last-event-id': subscribed.id! });
    await eventually(() => again.events.some((e) => e.event === undefined), 'the message published while away');
    expect(again.events.filter((e) => e.event === undefined)).toEqual([{ id: '2', data: '"while away"' }]);
    again.close();
  });

  it('ends a stalled SSE reader (EventSource would reconnect with Last-Event-ID) without holding up others', async () => {
    const t = await start({ channels: { realtime: { maxQueuedBytes: 512 * 1024, maxQueuedMessages: 100_000 } } });
    const healthy = await open(`${t.url}/v1/channels/chat%3Aslow/events`);
    const stalled = await open(`${t.url}/v1/channels/chat%3Aslow/events`);
    stalled.res.pause();
    let ended = false;
    stalled.res.on('close', () => (ended = true));
    await eventually(() => t.server.realtime.sseStreams === 2, 'two streams');
    const payload = JSON.stringify('s'.repeat(16 * 1024));
    const total = 1000;
    for (let i = 0; i < total; i += 10) {
      for (let j = 0; j < 10; j++) t.server.channels.publish({ user: '', unrestricted: true, capabilities: [] }, 'chat:slow', payload, 'server');
      await eventually(() => healthy.events.filter((e) => e.event === undefined).length === i + 10, 'the healthy stream to keep up');
    }
    stalled.res.resume();
    await eventually(() => ended, 'the stalled stream ended');
    expect(t.server.realtime.sseStreams).toBe(1);
    expect(stalled.events.filter((e) => e.event === undefined).length).toBeLessThan(total);
    healthy.close();
  });

  it('refuses SSE without a valid token or capability when auth is on', async () => {
    const t = await start({ auth: { secret: SECRET } });
    expect((await fetch(`${t.url}/v1/channels/chat%3A1/events`)).status).toBe(401);
    const token = await hs256({ sub: 'u', channels: [{ match: 'feed:*', allow: ['subscribe'] }] });
    expect((await fetch(`${t.url}/v1/channels/chat%3A1/events?token=${token}`)).status).toBe(403);
  });
});
