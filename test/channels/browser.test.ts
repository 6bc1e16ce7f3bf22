/**
 * Channels in real Chromium pages (Debian's chromium through playwright-core): the SDK bundled
 * for the browser, native EventSource, two pages for presence, a page whose main thread stalls.
 * Brook runs in this process; pages reach it through a cuttable TCP proxy (network drops, server
 * restarts on a new port) or directly (the stall test, so no proxy buffer hides the stall).
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';
import { hs256, SECRET } from '../server/tokens.js';
import { eventually } from '../ws/setup.js';
import { CuttableProxy, startBrook, type RunningBrook } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ENTRY = fileURLToPath(new URL('../../src/client/index.ts', import.meta.url));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env['CI'] !== 'true') {
  process.stderr.write(`\n*** SKIPPING the channel browser tests: ${CHROMIUM} is missing. Under CI=true this fails. ***\n\n`);
}

const NAMESPACES = [
  { name: 'chat', history: { size: 5000, ttlMs: 120_000 }, presence: true, joinLeave: true },
  { name: 'doc', history: { size: 1000, ttlMs: 120_000, durable: true } },
];
const SERVER = { user: '', unrestricted: true, capabilities: [] } as const;

type Brook = typeof import('../../src/client/index.js');
interface PageGlobals {
  brook: Brook;
  got: Record<string, unknown[]>;
  events: Record<string, unknown[]>;
  clients: Record<string, InstanceType<Brook['RealtimeClient']>>;
}

describe.runIf(haveChromium || process.env['CI'] === 'true')('channels in Chromium', () => {
  let pageServer: Server;
  let pageUrl: string;
  let browser: Browser;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is required under CI=true`).toBe(true);
    const code = (await build({ entryPoints: [ENTRY], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', write: false, logLevel: 'silent' })).outputFiles[0]!.text;
    const html = `<!doctype html><meta charset="utf-8"><title>brook channels</title>
<script type="module">import * as brook from '/brook.js'; Object.assign(window, { brook, got: {}, events: {}, clients: {}, ready: true });</script>`;
    pageServer = createServer((req, res) => {
      if (req.url === '/brook.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(code);
      else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    pageUrl = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pageServer ? pageServer.close(() => resolve()) : resolve()));
  });

  async function brookServer(options: Parameters<typeof startBrook>[1] = {}): Promise<{ b: RunningBrook; dir: string; proxy: CuttableProxy; current: () => RunningBrook; restart: () => Promise<void> }> {
    const dir = await tempDir('brook-browser-ch-');
    cleanups.push(dir.remove);
    const state = { b: await startBrook(dir.path, { channels: { namespaces: NAMESPACES, realtime: { maxQueuedBytes: 256 * 1024 } }, ...options }) };
    cleanups.push(() => state.b.stop());
    const proxy = await CuttableProxy.start(state.b.server.port);
    cleanups.push(() => proxy.close());
    return {
      b: state.b,
      dir: dir.path,
      proxy,
      current: () => state.b,
      async restart() {
        await state.b.stop();
        state.b = await startBrook(dir.path, { channels: { namespaces: NAMESPACES }, ...options });
        proxy.targetPort = state.b.server.port;
      },
    };
  }

  async function newPage(): Promise<Page> {
    const page = await browser.newPage();
    cleanups.push(() => page.close());
    await page.goto(pageUrl);
    await page.waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true);
    return page;
  }

  /** Starts a RealtimeClient named `name` in the page, subscribed to `channel`; messages go to got[name]. */
  async function subscribeInPage(page: Page, name: string, url: string, channel: string, token?: string): Promise<void> {
    await page.evaluate(
      ({ name, url, channel, token }) => {
        const w = globalThis as unknown as PageGlobals;
        const rt = new w.brook.RealtimeClient({ url, reconnect: { baseMs: 50, capMs: 300 }, ...(token === undefined ? {} : { token }) });
        w.clients[name] = rt;
        const got: unknown[] = (w.got[name] = []);
        const events: unknown[] = (w.events[name] = []);
        rt.on('disconnected', (e) => events.push({ disconnected: e.code }));
        rt.on('error', (e) => events.push({ error: (e as { code?: string }).code ?? e.message }));
        rt.subscribe(channel, (m) => got.push(m.data), {
          onSubscribed: (s) => events.push({ subscribed: s.recovered ?? null, epoch: s.epoch }),
          onJoin: (who) => events.push({ join: who.user }),
          onLeave: (who) => events.push({ leave: who.user }),
          onError: (e) => events.push({ refused: e.code }),
        });
      },
      { name, url, channel, token },
    );
  }

  const got = (page: Page, name: string): Promise<unknown[]> => page.evaluate((n) => (globalThis as unknown as PageGlobals).got[n] ?? [], name);
  const count = (page: Page, name: string): Promise<number> => page.evaluate((n) => (globalThis as unknown as PageGlobals).got[n]?.length ?? 0, name);
  const events = (page: Page, name: string): Promise<Record<string, unknown>[]> =>
    page.evaluate((n) => ((globalThis as unknown as PageGlobals).events[n] ?? []) as Record<string, unknown>[], name);
  const range = (n: number): number[] => [...Array(n).keys()];

  it('subscribes and receives; the network drops mid-stream and the SDK recovers without gap or duplicate', async () => {
    const s = await brookServer();
    const page = await newPage();
    await subscribeInPage(page, 'a', s.proxy.url, 'chat:stream');
    await eventually(async () => (await events(page, 'a')).some((e) => 'subscribed' in e), 'subscribed');
    let n = 0;
    const pump = setInterval(() => {
      for (let i = 0; i < 10; i++) s.b.server.channels.publish(SERVER, 'chat:stream', String(n++), 'server');
    }, 5);
    await eventually(async () => (await got(page, 'a')).length > 100, 'messages before the drop');
    s.proxy.cut();
    await eventually(async () => (await events(page, 'a')).filter((e) => 'subscribed' in e).length === 2, 'resubscribed after the drop');
    clearInterval(pump);
    await eventually(async () => (await got(page, 'a')).length === n, `all ${n} messages`);
    expect(await got(page, 'a')).toEqual(range(n));
    expect((await events(page, 'a')).filter((e) => 'subscribed' in e).map((e) => e['subscribed'])).toEqual([null, true]);
  });

  it('recovers a durable channel across a server restart', async () => {
    const s = await brookServer();
    const page = await newPage();
    await subscribeInPage(page, 'd', s.proxy.url, 'doc:1');
    await eventually(async () => (await events(page, 'd')).length === 1, 'subscribed');
    for (let i = 0; i < 20; i++) await s.b.server.channels.publish(SERVER, 'doc:1', String(i), 'server');
    await eventually(async () => (await got(page, 'd')).length === 20, 'first 20');
    await s.restart();
    for (let i = 20; i < 30; i++) await s.current().server.channels.publish(SERVER, 'doc:1', String(i), 'server');
    await eventually(async () => (await got(page, 'd')).length === 30, 'recovered after the restart', 20_000);
    expect(await got(page, 'd')).toEqual(range(30));
    const subs = (await events(page, 'd')).filter((e) => 'subscribed' in e);
    expect(subs.at(-1)).toMatchObject({ subscribed: true, epoch: subs[0]!['epoch'] });
  });

  it('native EventSource streams id/data and resumes with Last-Event-ID after a drop', async () => {
    const s = await brookServer();
    const page = await newPage();
    for (let i = 0; i < 5; i++) await s.b.server.channels.publish(SERVER, 'chat:sse', String(i), 'server');
    await page.evaluate((url) => {
      const w = globalThis as unknown as PageGlobals & { es: EventSource };
      const ids: unknown[] = (w.got['sse'] = []);
      const opened: unknown[] = (w.events['sse'] = []);
      const es = new EventSource(`${url}/v1/channels/chat%3Asse/events?since=1`);
      es.onmessage = (e) => ids.push({ id: e.lastEventId, data: JSON.parse(e.data as string) as unknown });
      es.addEventListener('subscribed', (e) => opened.push(JSON.parse((e as MessageEvent).data as string)));
      w.es = es;
    }, s.proxy.url);
    await eventually(async () => (await got(page, 'sse')).length === 3, 'the three after since=1');
    s.proxy.cut();
    for (let i = 5; i < 10; i++) await s.b.server.channels.publish(SERVER, 'chat:sse', String(i), 'server');
    await eventually(async () => (await got(page, 'sse')).length === 8, 'resumed with Last-Event-ID', 20_000);
    const all = (await got(page, 'sse')) as { id: string; data: number }[];
    expect(all.map((e) => e.data)).toEqual(range(10).slice(2));
    expect(all.map((e) => e.id)).toEqual(range(10).slice(2).map(String));
    const opened = await events(page, 'sse');
    expect(opened.length).toBe(2);
    expect(opened[1]).toMatchObject({ recovered: true });
    await page.evaluate(() => (globalThis as unknown as { es: EventSource }).es.close());
  });

  it('presence: two pages see each other join, and leave when one goes away', async () => {
    const s = await brookServer({ auth: { secret: SECRET } });
    const caps = [{ match: 'chat:*', allow: ['subscribe', 'presence'] }];
    const a = await newPage();
    const b = await newPage();
    await subscribeInPage(a, 'p', s.proxy.url, 'chat:presence', await hs256({ sub: 'ann', channels: caps }));
    await eventually(async () => (await events(a, 'p')).length >= 1, 'a subscribed');
    await subscribeInPage(b, 'p', s.proxy.url, 'chat:presence', await hs256({ sub: 'bob', channels: caps }));
    await eventually(async () => (await events(a, 'p')).some((e) => e['join'] === 'bob'), 'a sees bob join');
    const count = await a.evaluate(async () => (await (globalThis as unknown as PageGlobals).clients['p']!.presence('chat:presence')).count);
    expect(count).toBe(2);
    await b.close();
    await eventually(async () => (await events(a, 'p')).some((e) => e['leave'] === 'bob'), 'a sees bob leave');
  });

  it('auth: no token is refused (1008), a token without the capability gets FORBIDDEN, bad frames and unknown channels get clear errors', async () => {
    const s = await brookServer({ auth: { secret: SECRET } });
    const page = await newPage();
    await subscribeInPage(page, 'anon', s.proxy.url, 'chat:x');
    await eventually(async () => (await events(page, 'anon')).some((e) => e['disconnected'] === 1008), 'closed with 1008');
    await subscribeInPage(page, 'weak', s.proxy.url, 'doc:private', await hs256({ sub: 'w', channels: [{ match: 'chat:*', allow: ['subscribe'] }] }));
    await eventually(async () => (await events(page, 'weak')).some((e) => e['refused'] === 'FORBIDDEN'), 'FORBIDDEN');
    await subscribeInPage(page, 'lost', s.proxy.url, 'nowhere:1', await hs256({ sub: 'w', channels: [{ match: '*', allow: ['subscribe'] }] }));
    await eventually(async () => (await events(page, 'lost')).some((e) => e['refused'] === 'UNKNOWN_CHANNEL'), 'UNKNOWN_CHANNEL');
    const token = await hs256({ sub: 'w', channels: [{ match: '*', allow: ['subscribe'] }] });
    const raw = await page.evaluate(
      ({ url, token }) =>
        new Promise<unknown[]>((resolve) => {
          const frames: unknown[] = [];
          const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/realtime?token=${token}`, 'brook.realtime.v1');
          ws.onopen = () => {
            ws.send('garbage');
            ws.send(JSON.stringify({ type: 'subscribe', id: 1, channels: 'chat:1' }));
          };
          ws.onmessage = (e) => {
            frames.push(JSON.parse(e.data as string));
            if (frames.length === 3) resolve(frames);
          };
        }),
      { url: s.proxy.url, token },
    );
    expect(raw[1]).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: 'frame is not valid JSON' });
    expect(raw[2]).toMatchObject({ type: 'error', id: 1, code: 'INVALID_FRAME' });
  });

  it('a stalled page is disconnected with 4004 and then recovers, while a healthy page keeps receiving', async () => {
    const s = await brookServer();
    const direct = s.b.server.url; // no proxy buffers between the server and the stalled page
    const healthy = await newPage();
    const stalled = await newPage();
    await subscribeInPage(healthy, 'h', direct, 'chat:flood');
    await subscribeInPage(stalled, 's', direct, 'chat:flood');
    const subscribed = async (p: Page, name: string): Promise<boolean> => (await events(p, name)).some((e) => 'subscribed' in e);
    await eventually(async () => (await subscribed(healthy, 'h')) && (await subscribed(stalled, 's')), 'both subscribed');
    // The stalled page's main thread is busy for 6 s: it reads nothing, so its socket backs up.
    await stalled.evaluate(() => {
      setTimeout(() => {
        const end = Date.now() + 6_000;
        while (Date.now() < end) {
          // busy
        }
      }, 0);
    });
    const payload = JSON.stringify('z'.repeat(16 * 1024));
    const total = 2000; // 32 MB in all, in small bursts a healthy reader keeps up with
    for (let i = 0; i < total; i += 20) {
      for (let j = 0; j < 20; j++) s.b.server.channels.publish(SERVER, 'chat:flood', payload, 'server');
      await eventually(async () => (await count(healthy, 'h')) >= i + 20, 'the healthy page to keep up');
    }
    expect((await count(healthy, 'h'))).toBe(total);
    await eventually(async () => (await events(stalled, 's')).some((e) => e['disconnected'] === 4004), 'the stalled page disconnected with 4004', 20_000);
    // It reconnects and recovers everything from its last offset (the history holds 5000).
    await eventually(async () => (await count(stalled, 's')) === total, 'the stalled page recovered', 30_000);
    const subs = (await events(stalled, 's')).filter((e) => 'subscribed' in e);
    expect(subs.at(-1)).toMatchObject({ subscribed: true });
  });
});
