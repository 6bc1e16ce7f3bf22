/**
 * Row filters on channel subscriptions (docs/channels.md, "Row filters"): the conditions, their
 * validation, and a CDC-shaped topic channel where each subscriber gets only its rows — filtered
 * before fan-out, recovered history filtered alike, and permissions checked before the filter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Publication, RowFilter } from '../../src/channels/index.js';
import { hs256, SECRET } from '../server/tokens.js';
import { setup, WsClient, type WsTestServer } from '../ws/setup.js';

const pub = (offset: number, data: unknown): Publication => new Publication(offset, JSON.stringify(data), 0);

describe('RowFilter', () => {
  it('matches every operator on nested paths, numbers given as strings (CDC numeric) included', () => {
    const row = { op: 'u', after: { id: '42', status: 'paid', total: '120.50', tags: null, note: 'x' } };
    const ok = (spec: unknown): boolean => RowFilter.parse(spec).matches(pub(0, row));
    expect(ok([['after.status', 'eq', 'paid']])).toBe(true);
    expect(ok([['after.status', 'ne', 'paid']])).toBe(false);
    expect(ok([['after.total', 'gte', 100]])).toBe(true);
    expect(ok([['after.total', 'lt', '99.5']])).toBe(false);
    expect(ok([['after.status', 'in', ['paid', 'shipped']]])).toBe(true);
    expect(ok([['op', 'in', ['c', 'd']]])).toBe(false);
    expect(ok([['after.tags', 'eq', null]])).toBe(true);
    expect(ok([['before', 'exists', false]])).toBe(true);
    expect(ok([['after.missing.deeper', 'exists']])).toBe(false);
    expect(ok([['after.status', 'eq', 'paid'], ['after.total', 'gt', 500]])).toBe(false); // all must hold
    expect(ok([['after.note', 'gt', 'w']])).toBe(true); // strings compare as strings
    // A missing field never equals, never differs, never orders.
    expect(ok([['after.nope', 'ne', 'x']])).toBe(false);
    expect(ok([['after.nope', 'lt', 5]])).toBe(false);
    // Data that is not JSON matches nothing.
    expect(RowFilter.parse([['a', 'exists', false]]).matches(new Publication(0, 'not json', 0))).toBe(false);
  });

  it('refuses malformed filters with INVALID_FILTER and says what is wrong', () => {
    for (const bad of [
      [],
      'after.status=paid',
      [['after.status']],
      [['', 'eq', 1]],
      [['a..b', 'eq', 1]],
      [['a', 'like', 'x%']],
      [['a', 'eq', { nested: true }]],
      [['a', 'in', []]],
      [['a', 'gt', true]],
      [['a', 'exists', 'yes']],
      Array.from({ length: 17 }, () => ['a', 'eq', 1]),
    ]) {
      expect(() => RowFilter.parse(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'INVALID_FILTER' }));
    }
  });
});

describe('row filters on a topic channel over /v1/realtime', () => {
  const servers: WsTestServer[] = [];
  const clients: WsClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    for (const s of servers.splice(0)) await s.cleanup();
  });

  async function connect(t: WsTestServer, token: string): Promise<WsClient> {
    const c = await WsClient.connect(`${t.url.replace('http://', 'ws://')}/v1/realtime?token=${token}`, { protocols: 'brook.realtime.v1' });
    clients.push(c);
    return c;
  }

  it('delivers each subscriber only its rows, live and recovered, and checks permissions first', async () => {
    const t = await setup({ auth: { secret: SECRET }, channels: { namespaces: [{ name: 'topic', source: 'topic', history: { size: 100 } }] } });
    servers.push(t);
    const topic = 'cdc.public.orders';
    await t.engine.createTopic(topic, { partitions: 1 });
    const row = (id: number, status: string): { value: Uint8Array } => ({
      value: new TextEncoder().encode(JSON.stringify({ op: 'c', before: null, after: { id, status, total: String(id * 10) } })),
    });
    await t.engine.produce(topic, [row(1, 'paid'), row(2, 'new'), row(3, 'paid')]);

    const reader = await hs256({ sub: 'r', channels: [{ match: 'topic:*', allow: ['subscribe'] }], permissions: [{ topics: 'cdc.*', actions: ['read'] }] });
    const paid = await connect(t, reader);
    const all = await connect(t, reader);
    const filter = [['after.status', 'eq', 'paid']];
    const sub = await paid.request({ type: 'subscribe', channels: [{ channel: `topic:${topic}`, since: { offset: -1, epoch: 't0' }, filter }] });
    expect(sub['results']).toMatchObject([{ channel: `topic:${topic}`, recovered: true }]);
    await all.request({ type: 'subscribe', channels: [{ channel: `topic:${topic}`, since: { offset: -1, epoch: 't0' } }] });

    await t.engine.produce(topic, [row(4, 'new'), row(5, 'paid')]);
    await all.waitFor((f) => f.type === 'pub' && f['offset'] === 4);
    await paid.waitFor((f) => f.type === 'pub' && f['offset'] === 4);
    const offsets = (c: WsClient): number[] => c.frames.filter((f) => f.type === 'pub').map((f) => f['offset'] as number);
    expect(offsets(all)).toEqual([0, 1, 2, 3, 4]);
    // Recovered history (0..2) and live rows (3..4), filtered alike.
    expect(offsets(paid)).toEqual([0, 2, 4]);

    // A bad filter is refused per channel, without ending the connection.
    const bad = await paid.request({ type: 'subscribe', channels: [{ channel: `topic:${topic}`, filter: [['after.status', 'like', 'p%']] }] });
    expect(bad['results']).toMatchObject([{ error: { code: 'INVALID_FILTER' } }]);

    // Without read permission on the topic, a filter reveals nothing: FORBIDDEN, not INVALID_FILTER.
    const stranger = await hs256({ sub: 's', channels: [{ match: 'topic:*', allow: ['subscribe'] }], permissions: [{ topics: 'other', actions: ['read'] }] });
    const s = await connect(t, stranger);
    const denied = await s.request({ type: 'subscribe', channels: [{ channel: `topic:${topic}`, filter: [['x', 'like', 1]] }] });
    expect(denied['results']).toMatchObject([{ error: { code: 'FORBIDDEN' } }]);
  });

  it('filters SSE streams with ?filter=, and answers 400 INVALID_FILTER for filter text that is not JSON', async () => {
    const t = await setup({ channels: { namespaces: [{ name: 'topic', source: 'topic', history: { size: 100 } }] } });
    servers.push(t);
    await t.engine.createTopic('orders', { partitions: 1 });
    await t.engine.produce('orders', ['a', 'b', 'a'].map((k) => ({ value: new TextEncoder().encode(JSON.stringify({ k })) })));
    const bad = await fetch(`${t.url}/v1/channels/topic:orders/events?filter=${encodeURIComponent('[[oops')}`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_FILTER');

    const controller = new AbortController();
    const res = await fetch(`${t.url}/v1/channels/topic:orders/events?since=-1&filter=${encodeURIComponent(JSON.stringify([['k', 'eq', 'a']]))}`, {
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    while (!/id: 2\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    expect(ids.filter((id) => id >= 0)).toEqual([0, 2]);
  });
});
