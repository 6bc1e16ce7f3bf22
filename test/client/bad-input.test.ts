import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { BrookClient, BrookServerError, InvalidArgumentError, MessageTooLargeError } from '../../src/client/index.js';
import { SECRET, hs256 } from '../server/tokens.js';
import { readAll, setup, take, type ClientTestServer } from './setup.js';

let t: ClientTestServer;
beforeEach(async () => {
  t = await setup();
});
afterEach(async () => {
  await t.cleanup();
});

describe('bad input surfaces as errors with stable codes', () => {
  it('refuses bad client and producer options synchronously', () => {
    expect(() => new BrookClient({ url: 'not a url', WebSocket })).toThrow(InvalidArgumentError);
    expect(() => new BrookClient({ url: 'ftp://127.0.0.1', WebSocket })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
      expect(() => new BrookClient({ url: t.url })).toThrow(/pass one/);
    }
    const client = t.client();
    expect(() => client.producer({ topic: 'x', idempotent: true })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => client.producer({ topic: 'x', partition: 0, maxInflight: 9 })).toThrow(/at most 8/);
    expect(() => client.producer({ topic: '' })).toThrow(InvalidArgumentError);
    expect(() => client.producer({ topic: 'x', partition: -1 })).toThrow(InvalidArgumentError);
    expect(() => client.consumer({ topic: 'x', group: 'g', from: 'earliest' })).toThrow(InvalidArgumentError);
    expect(() => client.consumer({ topic: 'x', credits: 0 })).toThrow(InvalidArgumentError);
  });

  it('rejects records that can never be sent, without poisoning the batch they would have joined', async () => {
    const client = t.client();
    const producer = client.producer<unknown>({ topic: 'bad-records', partition: 0, lingerMs: 20 });
    const good1 = producer.send({ value: 1 });
    const cases: [Promise<unknown>, string][] = [
      [producer.send({ value: undefined }), 'INVALID_ARGUMENT'],
      [producer.send({ value: 10n }), 'INVALID_ARGUMENT'],
      [producer.send({ key: 7 as unknown as string, value: 1 }), 'INVALID_ARGUMENT'],
      [producer.send({ value: 1, headers: { n: 1 as unknown as string } }), 'INVALID_ARGUMENT'],
      [producer.send(null as unknown as { value: 1 }), 'INVALID_ARGUMENT'],
      [producer.send({ value: 'x'.repeat(2 * 1024 * 1024) }), 'MESSAGE_TOO_LARGE'],
    ];
    const good2 = producer.send({ value: 2 });
    for (const [p, code] of cases) await expect(p).rejects.toMatchObject({ code });
    await expect(cases[5]![0]).rejects.toBeInstanceOf(MessageTooLargeError);
    expect((await good1).offset).toBe(0);
    expect((await good2).offset).toBe(1);
    expect((await readAll(t.engine, 'bad-records', 0)).map((r) => r.value)).toEqual([1, 2]);
  });

  it('surfaces server refusals with their codes, and an idempotent producer carries on after one', async () => {
    const client = t.client();
    const bad = client.producer({ topic: 'no spaces allowed' });
    await expect(bad.send({ value: 1 })).rejects.toMatchObject({ code: 'INVALID_TOPIC_NAME', name: 'BrookServerError' });

    // The server's per-topic limit is below the client's check (welcome carries the default).
    await t.engine.createTopic('small', { maxRecordBytes: 100 });
    const producer = client.producer<string>({ topic: 'small', partition: 0 });
    await expect(producer.send({ value: 'y'.repeat(500) })).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    // The refused batch took no sequence numbers: the next batch is appended normally.
    expect(await producer.send({ value: 'ok' })).toEqual({ partition: 0, offset: 0 });
    expect(await producer.send({ value: 'ok2' })).toEqual({ partition: 0, offset: 1 });
  });

  it('ends a consumer with the server error: unknown topic, partition, out-of-range offset', async () => {
    const client = t.client();
    await expect(client.consumer({ topic: 'missing' }).next()).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await t.engine.createTopic('one-partition');
    await expect(client.consumer({ topic: 'one-partition', partition: 3 }).next()).rejects.toMatchObject({
      code: 'PARTITION_NOT_FOUND',
    });
    const far = client.consumer({ topic: 'one-partition', from: { offset: 1000 } });
    await expect(far.ready()).rejects.toBeInstanceOf(BrookServerError);
    await expect(far.next()).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
    expect(await far.next()).toEqual({ done: true, value: undefined }); // reported once, then ended

    const plain = client.consumer({ topic: 'one-partition' });
    await plain.ready();
    await expect(plain.commit()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(plain.seek(-1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(plain.seek(99)).rejects.toMatchObject({ code: 'OFFSET_OUT_OF_RANGE' });
  });

  it('reports decode failures per record and goes on', async () => {
    const client = t.client();
    const producer = client.producer<unknown>({ topic: 'decode', partition: 0 });
    await producer.send({ value: 'bad' });
    await producer.send({ value: 2 });
    const consumer = client.consumer<number>({
      topic: 'decode',
      decode: (v) => {
        if (typeof v !== 'number') throw new Error('not a number');
        return v;
      },
    });
    await expect(consumer.next()).rejects.toMatchObject({ code: 'DECODE_FAILED', offset: 0 });
    expect((await take(consumer, 1))[0]?.value).toBe(2);
  });

  it('fails pending work with CLIENT_CLOSED when the client closes', async () => {
    const client = t.client({ closeTimeoutMs: 50 });
    const consumer = client.consumer({ topic: 'closing', from: 'latest' });
    await client.connect();
    await client.close();
    expect(() => client.producer({ topic: 'x' })).toThrow(expect.objectContaining({ code: 'CLIENT_CLOSED' }));
    expect(await consumer.next()).toEqual({ done: true, value: undefined });
    await expect(client.connect()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
  });

  it('gives up on a refused token (close 1008) and asks a token function again', async () => {
    await t.cleanup();
    t = await setup({ server: { auth: { secret: SECRET } } });
    const refused = t.client({ token: 'not-a-jwt' });
    const reported: Error[] = [];
    refused.on('error', (err) => reported.push(err));
    await expect(refused.connect()).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', closeCode: 1008 });
    expect(refused.state).toBe('closed');
    expect(reported).toEqual([expect.objectContaining({ code: 'CONNECTION_CLOSED' })]);

    const good = await hs256({ sub: 'sdk-test', permissions: [{ topics: 'authed', actions: ['read', 'write'] }] });
    const tokens = ['expired-or-bad', good];
    let asked = 0;
    const client = t.client({ token: () => tokens[Math.min(asked++, 1)]! });
    await client.connect();
    expect(asked).toBe(2);
    await t.engine.createTopic('authed');
    const producer = client.producer({ topic: 'authed', partition: 0 });
    expect(await producer.send({ value: 1 })).toEqual({ partition: 0, offset: 0 });
    const other = client.producer({ topic: 'not-granted', partition: 0 });
    await expect(other.send({ value: 1 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});
