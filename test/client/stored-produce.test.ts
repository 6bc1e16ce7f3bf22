/**
 * The SDK's stored produce (docs/client.md, docs/protocol.md "Stored produce"): a producer with an
 * explicit partition sends kind 0x05 where the server offers it, anything else kind 0x01; and a
 * batch built as 0x05 converts to 0x01 byte for byte (a retry on a server without the feature).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeProduceFrame, decodeProduceRecords } from '../../src/broker/index.js';
import { binaryRecordParts, ProduceFrame, STORED_RECORD_EXTRA_BYTES } from '../../src/client/binary.js';
import type { Engine } from '../../src/engine/index.js';
import { setup, type ClientTestServer } from './setup.js';

let t: ClientTestServer | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

/** Counts the engine calls each kind of produce frame ends in. */
function counting(calls: { append: number; appendStored: number; produce: number }): (engine: Engine) => Engine {
  return (engine) =>
    new Proxy(engine, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        const fn = (value as (...a: unknown[]) => unknown).bind(target);
        if (prop === 'append' || prop === 'appendStored' || prop === 'produce') {
          return (...args: unknown[]) => {
            calls[prop]++;
            return fn(...args);
          };
        }
        return fn;
      },
    });
}

describe('SDK stored produce', () => {
  it('a producer with an explicit partition sends its batches as stored batches; the records read back as sent', async () => {
    const calls = { append: 0, appendStored: 0, produce: 0 };
    t = await setup({ wrap: counting(calls) });
    await t.engine.createTopic('sps', { partitions: 2 });
    const client = t.client();
    const producer = client.producer<unknown>({ topic: 'sps', partition: 1, batchSize: 10 });
    const sent: { key?: string; value: unknown; headers?: Record<string, string> }[] = [
      { key: 'a', value: { n: 1 }, headers: { trace: 't1', 'ü': 'ß' } },
      { value: null },
      { key: 'b', value: new Uint8Array([0, 255]) },
      ...Array.from({ length: 30 }, (_, i) => ({ value: i })),
    ];
    const metadata = await producer.sendMany(sent);
    expect(metadata.map((m) => m.offset)).toEqual(sent.map((_, i) => i));
    expect(calls.appendStored).toBeGreaterThanOrEqual(4); // batches of at most 10
    expect(calls.append).toBe(0);
    const stored = (await t.engine.read('sps', 1, 0, { maxRecords: 100 })).records;
    expect(stored).toHaveLength(sent.length);
    expect(stored.map((r) => r.key?.toString() ?? null)).toEqual(sent.map((r) => r.key ?? null));
    expect(stored[0]!.headers).toEqual({ trace: 't1', 'ü': 'ß' });
    expect(stored[0]!.value?.toString()).toBe('{"n":1}');
    expect(stored[1]!.value).toBeNull();
    expect([...stored[2]!.value!]).toEqual([0, 255]);
    expect(stored.slice(3).map((r) => Number(r.value?.toString()))).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await client.close();
  });

  it('a producer without a partition (the server routes by key) and a JSON connection send kind 0x01 / JSON', async () => {
    const calls = { append: 0, appendStored: 0, produce: 0 };
    t = await setup({ wrap: counting(calls) });
    await t.engine.createTopic('spr', { partitions: 2 });
    const binary = t.client();
    await binary.producer<number>({ topic: 'spr' }).sendMany([1, 2, 3].map((value) => ({ key: `k${value}`, value })));
    expect(calls).toMatchObject({ produce: 1, appendStored: 0 });
    const json = t.client({ protocol: 'json' });
    await json.producer<number>({ topic: 'spr', partition: 0 }).send({ value: 4 });
    expect(calls).toMatchObject({ append: 1, appendStored: 0 });
    await Promise.all([binary.close(), json.close()]);
  });

  it('a stored-layout frame converts to kind 0x01 with the same records', () => {
    const records = [
      { key: 'k', value: new Uint8Array([1, 2, 3]), headers: { a: '1', 'ü': '€' } },
      { key: null, value: null, headers: undefined },
      { key: '', value: '{"x":true}', headers: undefined },
    ];
    const parts = records.map((r) => binaryRecordParts(r.key, r.value, r.headers));
    const size = parts.reduce((n, p) => n + p.size + STORED_RECORD_EXTRA_BYTES, 0);
    const stored = new ProduceFrame(',"topic":"t","partition":0', parts, size, undefined, { producerId: null });
    expect(stored.withId(1)[0]).toBe(0x05);
    const frame = stored.asKind01(',"topic":"t","partition":0').withId(2);
    const decoded = decodeProduceFrame(frame);
    if (!decoded.ok) throw new Error(decoded.message);
    expect(decoded.stored).toBe(false);
    expect(decoded.header).toMatchObject({ id: 2, topic: 't', partition: 0 });
    const back = decodeProduceRecords(decoded.body, decoded.recordCount);
    expect(back.map((r) => [r.key === null ? null : Buffer.from(r.key!).toString(), r.value === null ? null : [...r.value], r.headers ?? {}])).toEqual([
      ['k', [1, 2, 3], { a: '1', 'ü': '€' }],
      [null, null, {}],
      ['', [...Buffer.from('{"x":true}')], {}],
    ]);
  });
});
