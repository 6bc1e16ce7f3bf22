/** Bad input, connection-level limits, close codes, authentication and shutdown. */
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hs256, SECRET } from '../server/tokens.js';
import { eventually, setup, WsClient, type WsTestServer } from './setup.js';

describe('WebSocket protocol: bad input', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup({ ws: { maxFrameBytes: 4096 } });
    await t.engine.createTopic('ok');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const works = async (c: WsClient): Promise<void> => {
    expect(await c.request({ type: 'fetch', topic: 'ok', partition: 0, offset: 0 })).toMatchObject({ type: 'fetched' });
  };

  it('answers malformed JSON, unknown types, bad shapes and binary frames with INVALID_FRAME and keeps serving', async () => {
    const c = await WsClient.connect(t.wsUrl);
    c.send('{"type":"produce",');
    expect(await c.waitFor((f) => f.type === 'error')).toEqual({
      type: 'error',
      code: 'INVALID_FRAME',
      message: expect.stringContaining('not valid JSON'),
    });
    c.send({ type: 'teleport', id: 'u-1' });
    expect(await c.waitFor((f) => f['id'] === 'u-1')).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringContaining('teleport') });
    c.send({ type: 'subscribe', id: 'u-2', topic: 'ok' });
    expect(await c.waitFor((f) => f['id'] === 'u-2')).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringContaining('sub') });
    c.send({ type: 'fetch', id: 'u-3', topic: 'ok', partition: -1, offset: 0 });
    expect(await c.waitFor((f) => f['id'] === 'u-3')).toMatchObject({ type: 'error', code: 'INVALID_FRAME' });
    c.send({ type: 'fetch', id: 'u-4', topic: 'ok', partition: 0, offset: 0, surprise: 1 });
    expect(await c.waitFor((f) => f['id'] === 'u-4')).toMatchObject({ type: 'error', code: 'INVALID_FRAME' });
    c.send('[1,2]');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await eventually(() => c.frames.filter((f) => f.type === 'error').length === 7, 'seven error frames');
    expect(c.frames.filter((f) => f.type === 'error').every((f) => f['code'] === 'INVALID_FRAME')).toBe(true);
    await works(c);
    await c.close();
  });

  it('closes with 4000 after more than 10 malformed frames in a row, and not before', async () => {
    const c = await WsClient.connect(t.wsUrl);
    for (let i = 0; i < 10; i++) c.send('nope');
    await works(c); // a good frame resets the count
    for (let i = 0; i < 10; i++) c.send('nope');
    await works(c);
    for (let i = 0; i < 11; i++) c.send('nope');
    expect(await c.closed).toEqual({ code: 4000, reason: expect.stringContaining('malformed') });
    expect(c.frames.filter((f) => f.type === 'error')).toHaveLength(31);
    // The server keeps serving others.
    const other = await WsClient.connect(t.wsUrl);
    await works(other);
    await other.close();
  });

  it('closes with 1009 on a frame over max_frame_bytes and keeps serving other connections', async () => {
    const bystander = await WsClient.connect(t.wsUrl);
    const c = await WsClient.connect(t.wsUrl);
    expect((await c.welcome())['limits']).toMatchObject({ max_frame_bytes: 4096 });
    c.send({ type: 'produce', id: 1, topic: 'ok', records: [{ value: 'x'.repeat(5000) }] });
    expect((await c.closed).code).toBe(1009);
    await works(bystander);
    const next = await WsClient.connect(t.wsUrl);
    await works(next);
    expect((await t.engine.watermarks('ok', 0)).highWatermark).toBe(0);
    await Promise.all([bystander.close(), next.close()]);
  });

  it('answers upgrades on other paths with 404', async () => {
    await expect(WsClient.connect(t.wsUrl.replace('/v1/ws', '/v1/elsewhere'))).rejects.toThrow('handshake answered 404');
  });
});

describe('WebSocket protocol: connection limits and close codes', () => {
  it('closes connections over max_connections with 4008', async () => {
    const t = await setup({ ws: { maxConnections: 1 } });
    try {
      const first = await WsClient.connect(t.wsUrl);
      await first.welcome();
      const second = await WsClient.connect(t.wsUrl);
      expect(await second.closed).toEqual({ code: 4008, reason: expect.stringContaining('too many connections') });
      expect(second.frames).toEqual([]);
      await first.close();
      await eventually(() => t.server.ws.connections === 0, 'the first connection to be gone');
      const third = await WsClient.connect(t.wsUrl);
      expect((await third.welcome()).type).toBe('welcome');
      await third.close();
    } finally {
      await t.cleanup();
    }
  });

  it('pings, and closes a peer silent for 3 heartbeat intervals with 4001', async () => {
    const t = await setup({ ws: { heartbeatMs: 200 } });
    try {
      const answering = await WsClient.connect(t.wsUrl);
      let pings = 0;
      answering.ws.on('ping', () => pings++);
      const silent = await WsClient.connect(t.wsUrl, { autoPong: false });
      expect((await silent.closed).code).toBe(4001);
      // The peer that answers pings is still open after the silent one was closed.
      expect(pings).toBeGreaterThan(0);
      expect(answering.ws.readyState).toBe(WebSocket.OPEN);
      await answering.close();
    } finally {
      await t.cleanup();
    }
  });

  it('closes every connection with 1001 on shutdown and leaves its groups', async () => {
    const t = await setup();
    try {
      await t.engine.createTopic('bye');
      const c = await WsClient.connect(t.wsUrl);
      await c.request({ type: 'join', group: 'g', topics: ['bye'] });
      c.send({ type: 'fetch', id: 'poll', topic: 'bye', partition: 0, offset: 0, wait_ms: 30_000 });
      await eventually(() => t.server.ws.sessions()[0]?.inflightRequests === 1, 'the long poll to be pending');
      // Resolves only once the connection is gone: the pending long poll does not hold it up.
      await t.server.close();
      expect((await c.closed).code).toBe(1001);
      await eventually(async () => (await t.engine.describeGroup('g')).members.length === 0, 'the member to leave');
    } finally {
      await t.cleanup();
    }
  });
});

describe('WebSocket protocol: access control', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup({ auth: { secret: SECRET } });
    await t.engine.createTopic('orders');
    await t.engine.createTopic('secret');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('closes with 1008 without a valid token', async () => {
    const none = await WsClient.connect(t.wsUrl);
    expect((await none.closed).code).toBe(1008);
    const bad = await WsClient.connect(`${t.wsUrl}?token=not-a-jwt`);
    expect((await bad.closed).code).toBe(1008);
    const expired = await WsClient.connect(t.wsUrl, { headers: { authorization: `Bearer ${await hs256({ sub: 'x' }, { exp: '-1h' })}` } });
    expect((await expired.closed).code).toBe(1008);
  });

  it('checks topic permissions per frame: FORBIDDEN without them', async () => {
    const token = await hs256({ sub: 'reader', permissions: [{ topics: 'orders', actions: ['read'] }] });
    const c = await WsClient.connect(`${t.wsUrl}?token=${token}`);
    expect((await c.welcome()).type).toBe('welcome');
    expect(await c.request({ type: 'subscribe', sub: 'o', topic: 'orders', partition: 0 })).toMatchObject({ type: 'subscribed' });
    expect(await c.request({ type: 'subscribe', sub: 's', topic: 'secret', partition: 0 })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await c.request({ type: 'produce', topic: 'orders', records: [{ value: 1 }] })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await c.request({ type: 'fetch', topic: 'secret', partition: 0, offset: 0 })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await c.request({ type: 'join', group: 'g', topics: ['secret'] })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await c.request({ type: 'commit', group: 'g', offsets: [{ topic: 'secret', partition: 0, offset: 0 }] })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    await c.close();
  });
});

describe('WebSocket protocol: a token that expires while connected', () => {
  it('ends the connection with 4010 when the token expires, after serving it until then', async () => {
    const t = await setup({ auth: { secret: SECRET, clockToleranceSeconds: 0 } });
    try {
      await t.engine.createTopic('orders');
      const exp = Math.floor(Date.now() / 1000) + 2;
      const c = await WsClient.connect(`${t.wsUrl}?token=${await hs256({ sub: 'brief', permissions: [{ topics: '*', actions: ['read'] }] }, { exp })}`);
      expect((await c.welcome()).type).toBe('welcome');
      expect(await c.request({ type: 'subscribe', sub: 'o', topic: 'orders', partition: 0 })).toMatchObject({ type: 'subscribed' });
      const closed = await c.closed;
      expect(closed).toEqual({ code: 4010, reason: expect.stringContaining('expired') });
      expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    } finally {
      await t.cleanup();
    }
  });
});
