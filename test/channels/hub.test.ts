/**
 * The channel hub on a real embedded engine: offsets and epochs, recovery (exact, and honest
 * recovered:false), durable history across a restart, topic channels, presence, capabilities,
 * and the failure path of a durable append.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ChannelError,
  ChannelHub,
  UNRESTRICTED,
  type Channel,
  type ChannelIdentity,
  type NamespaceInput,
  type PresenceEntry,
  type PresenceEvent,
  type Publication,
  type Subscriber,
} from '../../src/channels/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import type { Engine } from '../../src/engine/index.js';
import { tempDir } from '../helpers/temp-dir.js';

const logger = pino({ level: process.env['BROOK_TEST_LOG'] ?? 'silent' });
const NAMESPACES: NamespaceInput[] = [
  { name: 'chat', history: { size: 5, ttlMs: 60_000 }, presence: true, joinLeave: true, maxPresence: 2 },
  { name: 'dur', history: { size: 5, ttlMs: 60_000, durable: true } },
  { name: 'nohist' },
  { name: 'topic', source: 'topic', history: { size: 3 } },
  { name: 'user', history: { size: 10 } },
];

class TestSubscriber implements Subscriber {
  readonly got: { channel: string; offset: number; data: unknown }[] = [];
  readonly events: string[] = [];
  active = true;
  constructor(readonly presence: PresenceEntry = { client: `c-${Math.random().toString(36).slice(2)}`, user: 'u', info: undefined }) {}
  deliver(channel: Channel, pub: Publication): void {
    this.got.push({ channel: channel.name.name, offset: pub.offset, data: JSON.parse(pub.data) });
  }
  presenceEvent(_channel: Channel, event: PresenceEvent): void {
    this.events.push(event.json);
  }
  ended(channel: Channel, error: ChannelError): void {
    this.events.push(`ended ${channel.name.name} ${error.code}`);
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openEngine(path?: string): Promise<{ engine: EmbeddedEngine; path: string }> {
  let dir = path;
  if (dir === undefined) {
    const t = await tempDir('brook-channels-');
    cleanups.push(t.remove);
    dir = t.path;
  }
  const engine = new EmbeddedEngine({ dataDir: dir, logger });
  await engine.open();
  return { engine, path: dir };
}

async function openHub(engine: Engine, namespaces = NAMESPACES): Promise<ChannelHub> {
  const hub = new ChannelHub({ engine, logger, namespaces });
  await hub.open();
  return hub;
}

async function subscribe(hub: ChannelHub, s: Subscriber, channel: string, since?: { offset: number; epoch?: string }, identity: ChannelIdentity = UNRESTRICTED) {
  let out: Awaited<ReturnType<typeof collect>> | undefined;
  function collect(results: Parameters<Parameters<ChannelHub['subscribe']>[3]>[0]) {
    return results;
  }
  await hub.subscribe(identity, s, [{ channel, since }], (results) => (out = collect(results)));
  return out![0]!;
}

describe('ChannelHub', () => {
  it('gives consecutive offsets per channel and fans out to every subscriber', async () => {
    const { engine } = await openEngine();
    cleanups.push(() => engine.close());
    const hub = await openHub(engine);
    cleanups.push(async () => hub.close());
    const a = new TestSubscriber();
    const b = new TestSubscriber();
    const r = await subscribe(hub, a, 'chat:1');
    expect(r.ok?.offset).toBe(-1);
    await subscribe(hub, b, 'chat:1');
    const first = await hub.publish(UNRESTRICTED, 'chat:1', '{"n":0}', 'server');
    const second = await hub.publish(UNRESTRICTED, 'chat:1', '{"n":1}', 'server');
    await hub.publish(UNRESTRICTED, 'chat:2', '{"n":9}', 'server');
    expect([first.offset, second.offset]).toEqual([0, 1]);
    expect(first.epoch).toBe(second.epoch);
    expect(a.got.map((g) => g.offset)).toEqual([0, 1]);
    expect(b.got).toEqual(a.got);
  });

  it('recovers exactly what was missed, or says recovered:false past the history or on another epoch', async () => {
    const { engine } = await openEngine();
    cleanups.push(() => engine.close());
    const hub = await openHub(engine);
    cleanups.push(async () => hub.close());
    let epoch = '';
    for (let i = 0; i < 4; i++) epoch = (await hub.publish(UNRESTRICTED, 'chat:r', `{"n":${i}}`, 'server')).epoch;
    const s = new TestSubscriber();
    const r = await subscribe(hub, s, 'chat:r', { offset: 1, epoch });
    expect(r.ok).toMatchObject({ recovered: true, offset: 3, epoch });
    expect(r.ok!.missed.map((p) => p.offset)).toEqual([2, 3]);

    for (let i = 4; i < 12; i++) await hub.publish(UNRESTRICTED, 'chat:r', `{"n":${i}}`, 'server');
    const late = await subscribe(hub, new TestSubscriber(), 'chat:r', { offset: 2, epoch });
    expect(late.ok).toMatchObject({ recovered: false, offset: 11 });
    expect(late.ok!.missed).toEqual([]);
    const edge = await subscribe(hub, new TestSubscriber(), 'chat:r', { offset: 6, epoch });
    expect(edge.ok!.missed.map((p) => p.offset)).toEqual([7, 8, 9, 10, 11]);
    const wrongEpoch = await subscribe(hub, new TestSubscriber(), 'chat:r', { offset: 10, epoch: 'other' });
    expect(wrongEpoch.ok!.recovered).toBe(false);
    const future = await subscribe(hub, new TestSubscriber(), 'chat:r', { offset: 50, epoch });
    expect(future.ok!.recovered).toBe(false);
    const upToDate = await subscribe(hub, new TestSubscriber(), 'nohist:x', { offset: -1 });
    expect(upToDate.ok!.recovered).toBe(true);
  });

  it('memory history is lost on restart (new epoch); durable history survives with its epoch and offsets', async () => {
    const { engine, path } = await openEngine();
    const hub = await openHub(engine);
    const mem = await hub.publish(UNRESTRICTED, 'chat:m', '1', 'server');
    let last = { offset: -1, epoch: '' };
    for (let i = 0; i < 8; i++) last = await hub.publish(UNRESTRICTED, 'dur:d', `{"i":${i}}`, 'server');
    await hub.publish(UNRESTRICTED, 'dur:other', '"x"', 'server');
    hub.close();
    await engine.close();

    const { engine: engine2 } = await openEngine(path);
    cleanups.push(() => engine2.close());
    const hub2 = await openHub(engine2);
    cleanups.push(async () => hub2.close());
    const memAfter = await subscribe(hub2, new TestSubscriber(), 'chat:m', { offset: mem.offset, epoch: mem.epoch });
    expect(memAfter.ok!.recovered).toBe(false);
    expect(memAfter.ok!.epoch).not.toBe(mem.epoch);

    const s = new TestSubscriber();
    const dur = await subscribe(hub2, s, 'dur:d', { offset: 4, epoch: last.epoch });
    expect(dur.ok).toMatchObject({ recovered: true, offset: 7, epoch: last.epoch });
    expect(dur.ok!.missed.map((p) => JSON.parse(p.data) as unknown)).toEqual([{ i: 5 }, { i: 6 }, { i: 7 }]);
    const next = await hub2.publish(UNRESTRICTED, 'dur:d', '{"i":8}', 'server');
    expect(next).toEqual({ offset: 8, epoch: last.epoch });
    expect(s.got.map((g) => g.offset)).toEqual([8]);
    // Older than the 5-message history: honest.
    const old = await subscribe(hub2, new TestSubscriber(), 'dur:d', { offset: 0, epoch: last.epoch });
    expect(old.ok!.recovered).toBe(false);
  });

  it('a failed durable append fails the publish, delivers nothing and leaves no gap in offsets', async () => {
    const { engine } = await openEngine();
    cleanups.push(() => engine.close());
    let failNext = false;
    const flaky: Engine = Object.create(engine) as Engine;
    flaky.append = (...args: Parameters<Engine['append']>) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error('disk on fire'));
      }
      return engine.append(...args);
    };
    const hub = await openHub(flaky);
    cleanups.push(async () => hub.close());
    const s = new TestSubscriber();
    await subscribe(hub, s, 'dur:f');
    await hub.publish(UNRESTRICTED, 'dur:f', '0', 'server');
    failNext = true;
    const failing = hub.publish(UNRESTRICTED, 'dur:f', '1', 'server');
    const queued = hub.publish(UNRESTRICTED, 'dur:f', '2', 'server');
    await expect(failing).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    await expect(queued).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    const after = await hub.publish(UNRESTRICTED, 'dur:f', '3', 'server');
    expect(after.offset).toBe(1);
    expect(s.got.map((g) => [g.offset, g.data])).toEqual([
      [0, 0],
      [1, 3],
    ]);
  });

  it('exposes a log topic as a channel: log offsets, live records, recovery from the log beyond the window', async () => {
    const { engine } = await openEngine();
    cleanups.push(() => engine.close());
    await engine.createTopic('orders.cdc', { partitions: 2 });
    const enc = new TextEncoder();
    const rec = (v: string) => ({ value: enc.encode(v) });
    await engine.append('orders.cdc', 0, [rec('{"id":0}'), rec('{"id":1}'), rec('not json'), rec('{"id":3}'), rec('{"id":4}')]);
    const hub = await openHub(engine);
    cleanups.push(async () => hub.close());
    const s = new TestSubscriber();
    const r = await subscribe(hub, s, 'topic:orders.cdc', { offset: 0, epoch: 't0' });
    expect(r.ok).toMatchObject({ recovered: true, offset: 4, epoch: 't0' });
    expect(r.ok!.missed.map((p) => JSON.parse(p.data) as unknown)).toEqual([{ id: 1 }, 'not json', { id: 3 }, { id: 4 }]);
    await engine.append('orders.cdc', 0, [rec('{"id":5}')]);
    await expect.poll(() => s.got.map((g) => g.offset)).toEqual([5]);
    expect(() => hub.publish(UNRESTRICTED, 'topic:orders.cdc', '1', 'server')).toThrow(ChannelError);
    const missing = await subscribe(hub, new TestSubscriber(), 'topic:nope');
    expect(missing.error?.code).toBe('UNKNOWN_CHANNEL');
    const p1 = await subscribe(hub, new TestSubscriber(), 'topic:orders.cdc~1');
    expect(p1.ok).toMatchObject({ offset: -1, epoch: 't1' });
    // The topic goes away: subscribers are told, not left hanging.
    await engine.deleteTopic('orders.cdc');
    await expect.poll(() => s.events, { timeout: 15_000 }).toContain('ended topic:orders.cdc UNKNOWN_CHANNEL');
  });

  it('tracks presence with join/leave events, bounded per channel', async () => {
    const { engine } = await openEngine();
    cleanups.push(() => engine.close());
    const hub = await openHub(engine);
    cleanups.push(async () => hub.close());
    const a = new TestSubscriber({ client: 'ca', user: 'ann', info: '{"name":"Ann"}' });
    const b = new TestSubscriber({ client: 'cb', user: 'bob', info: undefined });
    const c = new TestSubscriber({ client: 'cc', user: 'cy', info: undefined });
    await subscribe(hub, a, 'chat:p');
    await subscribe(hub, b, 'chat:p');
    const full = await subscribe(hub, c, 'chat:p');
    expect(full.ok!.presenceFull).toBe(true);
    expect(hub.presence(UNRESTRICTED, 'chat:p')).toMatchObject({ count: 2 });
    expect(a.events.map((e) => JSON.parse(e) as unknown)).toEqual([
      { type: 'join', channel: 'chat:p', client: 'ca', user: 'ann', info: { name: 'Ann' } },
      { type: 'join', channel: 'chat:p', client: 'cb', user: 'bob' },
    ]);
    hub.unsubscribe(b, 'chat:p');
    expect(hub.presence(UNRESTRICTED, 'chat:p').clients.map((e) => e.client)).toEqual(['ca']);
    expect(JSON.parse(a.events.at(-1)!)).toEqual({ type: 'leave', channel: 'chat:p', client: 'cb', user: 'bob' });
  });

  it('checks capabilities with wildcards; user channels are readable only by their users', async () => {
    const { engine } = await openEngine();
    cleanups.push(() => engine.close());
    const hub = await openHub(engine);
    cleanups.push(async () => hub.close());
    const ann: ChannelIdentity = { user: 'ann', unrestricted: false, capabilities: [{ match: 'chat:*', allow: ['subscribe', 'history'] }] };
    const admin: ChannelIdentity = { user: 'root', unrestricted: false, capabilities: [{ match: '*', allow: ['subscribe', 'publish', 'presence', 'history'] }] };
    expect((await subscribe(hub, new TestSubscriber(), 'chat:x', undefined, ann)).ok).toBeDefined();
    expect((await subscribe(hub, new TestSubscriber(), 'user:#ann', undefined, ann)).ok).toBeDefined();
    expect((await subscribe(hub, new TestSubscriber(), 'user:#bob', undefined, ann)).error?.code).toBe('FORBIDDEN');
    expect((await subscribe(hub, new TestSubscriber(), 'user:#bob', undefined, admin)).error?.code).toBe('FORBIDDEN');
    expect((await subscribe(hub, new TestSubscriber(), 'dur:x', undefined, ann)).error?.code).toBe('FORBIDDEN');
    expect(() => hub.publish(ann, 'chat:x', '1', 'client')).toThrow(/not allowed to publish/);
    expect(() => hub.presence(ann, 'chat:x')).toThrow(/not allowed to presence/);
    expect((await hub.publish(admin, 'user:#bob', '1', 'server')).offset).toBe(0);
    expect((await subscribe(hub, new TestSubscriber(), 'bogus:x')).error?.code).toBe('UNKNOWN_CHANNEL');
    expect((await subscribe(hub, new TestSubscriber(), 'chat:bad name')).error?.code).toBe('INVALID_CHANNEL');
    expect(() => hub.publish(UNRESTRICTED, 'chat:big', JSON.stringify('x'.repeat(70_000)), 'server')).toThrow(/larger than/);
  });
});
