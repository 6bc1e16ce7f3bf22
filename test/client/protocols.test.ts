/** The SDK over both subprotocols (ClientOptions.protocol): the same records either way, raw bytes over binary, interop with HTTP. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { call } from '../server/setup.js';
import { setup, take, type ClientTestServer } from './setup.js';

let t: ClientTestServer;
beforeEach(async () => {
  t = await setup();
});
afterEach(async () => {
  await t.cleanup();
});

const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];

describe.each(['binary', 'json'] as const)('SDK over the %s protocol', (protocol) => {
  it('round-trips JSON values, keys, headers and tombstones; valueBytes are the JSON text', async () => {
    const client = t.client({ protocol });
    const producer = client.producer<unknown>({ topic: 'p', partition: 0 });
    const values: unknown[] = [{ n: 1, s: 'ü' }, 'text', 42, [1, null], null, true];
    await Promise.all(values.map((value, i) => producer.send({ key: i % 2 === 0 ? `k${i}` : null, value, headers: { i: String(i) } })));
    const consumer = client.consumer<unknown>({ topic: 'p', from: 'earliest' });
    const got = await take(consumer, values.length);
    expect(got.map((r) => r.value)).toEqual(values);
    expect(got.map((r) => r.key)).toEqual(['k0', null, 'k2', null, 'k4', null]);
    expect(got.map((r) => r.headers)).toEqual(values.map((_, i) => ({ i: String(i) })));
    expect(got.map((r) => (r.valueBytes === null ? null : [...r.valueBytes]))).toEqual(
      values.map((v) => (v === null ? null : utf8(JSON.stringify(v)))),
    );
    // Stored exactly as JSON over HTTP would have stored it.
    const overHttp = await call(t.url, 'GET', '/v1/topics/p/partitions/0/records?offset=0');
    expect((overHttp.body as { records: { value: unknown }[] }).records.map((r) => r.value)).toEqual(values);
    await consumer.close();
  });

  it('returns byte credit exactly: a window of a few records still delivers a long run without stalling', async () => {
    const client = t.client({ protocol });
    const producer = client.producer<{ pad: string; n: number }>({ topic: 'window', partition: 0 });
    const count = 300;
    await Promise.all(Array.from({ length: count }, (_, n) => producer.send({ value: { pad: 'x'.repeat(200), n } })));
    const consumer = client.consumer<{ pad: string; n: number }>({ topic: 'window', from: 'earliest', credits: { records: 1000, bytes: 1500 } });
    const got = await take(consumer, count);
    expect(got.map((r) => r.value.n)).toEqual(Array.from({ length: count }, (_, n) => n));
    // The server never held more than the window for this subscription.
    const sub = t.server.ws.sessions().flatMap((s) => s.subscriptions).find((s) => s.topic === 'window');
    expect(sub?.byteCredits).toBeLessThanOrEqual(1500);
    await consumer.close();
  });
});

describe('SDK binary protocol', () => {
  it('sends Uint8Array values as raw bytes and hands them back untouched; non-JSON bytes read as a string', async () => {
    const client = t.client({ protocol: 'binary' });
    const producer = client.producer<Uint8Array>({ topic: 'raw', partition: 0 });
    const raw = [new Uint8Array([0xff, 0x00, 0x80]), new Uint8Array(0), new TextEncoder().encode('{"a":1}'), new TextEncoder().encode('hi')];
    await Promise.all(raw.map((value) => producer.send({ value })));
    const stored = (await t.engine.read('raw', 0, 0)).records;
    expect(stored.map((r) => [...r.value!])).toEqual(raw.map((v) => [...v]));
    const consumer = client.consumer<unknown>({ topic: 'raw', from: 'earliest' });
    const got = await take(consumer, raw.length);
    expect(got.map((r) => [...r.valueBytes!])).toEqual(raw.map((v) => [...v]));
    expect(got[2]!.value).toEqual({ a: 1 });
    expect(got[3]!.value).toBe('hi');
    expect(got[1]!.value).toBe('');
    await consumer.close();
  });

  it('reads records produced over HTTP as the bytes of their JSON', async () => {
    expect((await call(t.url, 'POST', '/v1/topics/http-in/records', { records: [{ key: 'k', value: { q: [1, 2] } }] })).status).toBe(200);
    const client = t.client({ protocol: 'binary' });
    const consumer = client.consumer<{ q: number[] }>({ topic: 'http-in', from: 'earliest' });
    const [record] = await take(consumer, 1);
    expect(record!.value).toEqual({ q: [1, 2] });
    expect([...record!.valueBytes!]).toEqual(utf8('{"q":[1,2]}'));
    expect(record!.key).toBe('k');
    await consumer.close();
  });
});

describe('SDK JSON protocol', () => {
  it('refuses Uint8Array values, which JSON cannot carry', async () => {
    const client = t.client({ protocol: 'json' });
    const producer = client.producer<Uint8Array>({ topic: 'no-raw', partition: 0 });
    await expect(producer.send({ value: new Uint8Array([1]) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('rejects an unknown protocol option', () => {
    expect(() => t.client({ protocol: 'xml' as never })).toThrow(/protocol must be/);
  });
});
