/**
 * The SDK in a real browser: bundled for the browser with esbuild (which also proves that no Node
 * built-in is reachable from src/client/index.ts: esbuild's browser platform cannot resolve one),
 * served with a tiny page from a loopback HTTP server, and driven in Debian's Chromium through
 * playwright-core against a real Brook server, using the browser's own WebSocket.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setup, type ClientTestServer } from './setup.js';

const CHROMIUM = '/usr/bin/chromium';
const ENTRY = fileURLToPath(new URL('../../src/client/index.ts', import.meta.url));
const haveChromium = existsSync(CHROMIUM);

if (!haveChromium && process.env['CI'] !== 'true') {
  process.stderr.write(`\n*** SKIPPING the browser tests: ${CHROMIUM} is missing (apt-get install chromium). Under CI=true this fails. ***\n\n`);
}

async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

describe('browser bundle', () => {
  it('bundles for the browser, and the bundler refuses Node built-ins (so the check means something)', async () => {
    const code = await bundle(ENTRY);
    expect(code).toContain('BrookClient');
    expect(code).not.toMatch(/from\s*["']node:|require\(["'](node:)?(fs|net|http|events|crypto|buffer)["']\)/);
    const leaky = fileURLToPath(new URL('./fixtures/node-import.ts', import.meta.url));
    await expect(bundle(leaky)).rejects.toThrow(/node:events/);
  });
});

describe.runIf(haveChromium || process.env['CI'] === 'true')('the SDK in Chromium', () => {
  let t: ClientTestServer;
  let pageServer: Server;
  let pageUrl: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is required under CI=true`).toBe(true);
    t = await setup();
    const code = await bundle(ENTRY);
    const html = `<!doctype html><meta charset="utf-8"><title>brook sdk</title>
<script type="module">import * as brook from '/brook.js'; window.brook = brook; window.ready = true;</script>`;
    pageServer = createServer((req, res) => {
      if (req.url === '/brook.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(code);
      } else if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    pageUrl = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage();
    await page.goto(pageUrl);
    await page.waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pageServer ? pageServer.close(() => resolve()) : resolve()));
    await t?.cleanup();
  });

  it.each(['binary', 'json'] as const)('produces and consumes through the browser WebSocket (%s protocol), and resumes after a cut connection', async (protocol) => {
    const topic = `browser-${protocol}`;
    // Step 1 in the page: produce 20, read 10 (the consumer's window is smaller than what is there).
    const first = await page.evaluate(async ({ url, protocol, topic }) => {
      type Brook = typeof import('../../src/client/index.js');
      const w = globalThis as unknown as { brook: Brook; state: Record<string, unknown> };
      const client = new w.brook.BrookClient({ url, protocol, reconnect: { baseMs: 20, capMs: 200 } });
      const events: string[] = [];
      client.on('connected', (e) => events.push(e.reconnect ? 'reconnected' : 'connected'));
      client.on('disconnected', () => events.push('disconnected'));
      const producer = client.producer<{ n: number; text: string }>({ topic, partition: 0 });
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, n) => producer.send({ key: `k${n}`, value: { n, text: `héllo ${n} 🌊` } })),
      );
      const consumer = client.consumer<{ n: number; text: string }>({ topic, credits: 4 });
      const iterator = consumer[Symbol.asyncIterator]();
      const got: { offset: number; n: number; text: string; key: string | null }[] = [];
      while (got.length < 10) {
        const r = await iterator.next();
        if (r.done === true) break;
        got.push({ offset: r.value.offset, n: r.value.value.n, text: r.value.value.text, key: r.value.key });
      }
      w.state = { client, producer, iterator, events };
      return { offsets: sent.map((m) => m.offset), got, hasGlobalWebSocket: typeof WebSocket === 'function' };
    }, { url: t.proxyUrl, protocol, topic });
    expect(first.hasGlobalWebSocket).toBe(true);
    expect(first.offsets).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(first.got.map((r) => r.n)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(first.got[3]).toEqual({ offset: 3, n: 3, text: 'héllo 3 🌊', key: 'k3' });

    t.cut(); // the browser's socket drops; the SDK reconnects on its own

    const second = await page.evaluate(async () => {
      type Brook = typeof import('../../src/client/index.js');
      const w = globalThis as unknown as {
        state: {
          client: InstanceType<Brook['BrookClient']>;
          producer: InstanceType<Brook['Producer']>;
          iterator: AsyncIterator<{ offset: number; value: { n: number } }>;
          events: string[];
        };
      };
      const { client, producer, iterator, events } = w.state;
      const more = Promise.all(Array.from({ length: 5 }, (_, n) => producer.send({ value: { n: 20 + n, text: '' } })));
      const got: number[] = [];
      while (got.length < 15) {
        const r = await iterator.next();
        if (r.done === true) break;
        got.push(r.value.offset);
      }
      await more;
      await client.close();
      return { got, events, state: client.state };
    });
    expect(second.got).toEqual(Array.from({ length: 15 }, (_, i) => 10 + i));
    expect(second.events).toEqual(['connected', 'disconnected', 'reconnected']);
    expect(second.state).toBe('closed');
  });

  it('sends and receives raw bytes over the binary protocol in the page', async () => {
    const result = await page.evaluate(async (url) => {
      type Brook = typeof import('../../src/client/index.js');
      const w = globalThis as unknown as { brook: Brook };
      const client = new w.brook.BrookClient({ url, protocol: 'binary' });
      const producer = client.producer<Uint8Array>({ topic: 'browser-raw', partition: 0 });
      await producer.send({ value: new Uint8Array([0xff, 0, 1, 0x80]) });
      await producer.send({ value: new TextEncoder().encode('{"x":1}') });
      const consumer = client.consumer<unknown>({ topic: 'browser-raw' });
      const out: { bytes: number[]; value: unknown }[] = [];
      for await (const r of consumer) {
        out.push({ bytes: [...(r.valueBytes ?? [])], value: r.offset === 1 ? r.value : null });
        if (out.length === 2) break;
      }
      await client.close();
      return out;
    }, t.proxyUrl);
    expect(result).toEqual([
      { bytes: [0xff, 0, 1, 0x80], value: null },
      { bytes: [...Buffer.from('{"x":1}')], value: { x: 1 } },
    ]);
    const stored = (await t.engine.read('browser-raw', 0, 0)).records;
    expect([...stored[0]!.value!]).toEqual([0xff, 0, 1, 0x80]);
  });

  it('runs a consumer-group member in the page', async () => {
    await t.engine.createTopic('browser-group', { partitions: 2 });
    const result = await page.evaluate(async (url) => {
      type Brook = typeof import('../../src/client/index.js');
      const w = globalThis as unknown as { brook: Brook };
      const client = new w.brook.BrookClient({ url });
      const producers = [0, 1].map((partition) => client.producer<number>({ topic: 'browser-group', partition }));
      await Promise.all(producers.flatMap((p, partition) => [1, 2, 3].map((n) => p.send({ value: partition * 10 + n }))));
      const assigned: number[] = [];
      const consumer = client.consumer<number>({
        topic: 'browser-group',
        group: 'page',
        onAssigned: (tps) => void assigned.push(...tps.map((tp) => tp.partition)),
      });
      const values: number[] = [];
      for await (const r of consumer) {
        values.push(r.value);
        if (values.length === 6) break;
      }
      await client.close();
      return { values: values.sort((a, b) => a - b), assigned: assigned.sort() };
    }, t.proxyUrl);
    expect(result.values).toEqual([1, 2, 3, 11, 12, 13]);
    expect(result.assigned).toEqual([0, 1]);
  });
});
