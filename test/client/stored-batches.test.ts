/**
 * Stored-batch pushes (ConsumerOptions.storedBatches, docs/protocol.md "stored"): the server
 * sends whole batches as the engine keeps them, and the SDK decodes and CRC-checks them. The
 * records must be exactly those of ordinary pushes, from any position (also inside a batch),
 * with credit kept exact when batches do not fit and the server falls back.
 */
import { once } from 'node:events';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodePushFrame } from '../../src/client/binary.js';
import type { ConsumedRecord } from '../../src/client/index.js';
import { setup, take, type ClientTestServer } from './setup.js';

let t: ClientTestServer;
beforeEach(async () => {
  t = await setup();
});
afterEach(async () => {
  await t.cleanup();
});

interface RawSocket {
  readonly socket: WebSocket;
  readonly welcome: { features: string[] };
  readonly text: { type: string; [k: string]: unknown }[];
  readonly binary: Uint8Array[];
}

/** A bare WebSocket on /v1/ws speaking `protocol`, its frames collected. */
async function open(protocol: string): Promise<RawSocket> {
  const socket = new WebSocket(`${t.url.replace('http://', 'ws://')}/v1/ws`, protocol);
  const text: RawSocket['text'] = [];
  const binary: Uint8Array[] = [];
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) binary.push(new Uint8Array(data));
    else text.push(JSON.parse(data.toString()) as RawSocket['text'][number]);
  });
  await once(socket, 'open');
  await vi.waitFor(() => expect(text[0]?.type).toBe('welcome'));
  return { socket, welcome: text[0] as unknown as RawSocket['welcome'], text, binary };
}

const view = (r: ConsumedRecord<unknown>): unknown => ({
  offset: r.offset,
  key: r.key,
  value: r.valueBytes === null ? null : Buffer.from(r.valueBytes).toString('hex'),
  headers: r.headers,
});

/** 10 batches of 1 to 40 records, with null keys and values and headers here and there. */
async function fill(topic: string): Promise<number> {
  await t.engine.createTopic(topic, { partitions: 1 });
  let end = 0;
  for (let b = 0; b < 10; b++) {
    const n = 1 + ((b * 13) % 40);
    const result = await t.engine.append(
      topic,
      0,
      Array.from({ length: n }, (_, i) => ({
        key: i % 3 === 0 ? null : Buffer.from(`k${b}.${i}`),
        value: i % 7 === 0 ? null : Buffer.alloc(1 + ((b + i) * 29) % 300, b * 40 + i),
        ...(i % 5 === 0 ? { headers: { h: `v${i}`, 'ünï': '€' } } : {}),
      })),
    );
    end = result.baseOffset + n;
  }
  return end;
}

describe('stored-batch pushes', () => {
  it('deliver the same records as ordinary pushes, from any offset, including inside a batch', async () => {
    const end = await fill('s');
    const client = t.client({ protocol: 'binary' });
    for (const from of [0, 1, 17, end - 3]) {
      const stored = client.consumer({ topic: 's', from: { offset: from }, storedBatches: true, credits: { records: 5000, bytes: 4 * 1024 * 1024 } });
      const plain = client.consumer({ topic: 's', from: { offset: from } });
      const [a, b] = await Promise.all([take(stored, end - from), take(plain, end - from)]);
      expect(a.map(view)).toEqual(b.map(view));
      expect(a[0]!.offset).toBe(from);
      await Promise.all([stored.close(), plain.close()]);
    }
  });

  it('fall back to ordinary pushes when a batch does not fit the credit, and keep credit exact', async () => {
    const end = await fill('small-window');
    const client = t.client({ protocol: 'binary' });
    // A window smaller than most batches: every push that cannot be a whole batch is records.
    const consumer = client.consumer({ topic: 'small-window', from: 'earliest', storedBatches: true, credits: { records: 8, bytes: 2048 } });
    const got = await take(consumer, end);
    expect(got.map((r) => r.offset)).toEqual(Array.from({ length: end }, (_, i) => i));
    const sub = t.server.ws.sessions().flatMap((s) => s.subscriptions).find((s) => s.topic === 'small-window');
    expect(sub?.recordCredits).toBeLessThanOrEqual(8);
    expect(sub?.byteCredits).toBeLessThanOrEqual(2048);
    await consumer.close();
  });

  it('are what the server sends when asked, and a batch that fails its CRC is refused', async () => {
    await fill('raw');
    const ws = await open('brook.v1.bin');
    expect(ws.welcome.features).toContain('stored_batches');
    ws.socket.send(JSON.stringify({ type: 'subscribe', id: 1, sub: 'x', topic: 'raw', partition: 0, from: { offset: 3 }, credits: { records: 100, bytes: 1 << 20 }, stored_batches: true }));
    await vi.waitFor(() => expect(ws.binary.length).toBeGreaterThan(0));
    const frame = ws.binary[0]!;
    expect(frame[0]).toBe(0x04);
    const decoded = decodePushFrame(frame)!;
    expect(decoded.records[0]!.offset).toBe(3);
    // Credit sizes add up to the batches' bytes (the frame less its envelope).
    const headerLength = new DataView(frame.buffer, frame.byteOffset).getUint32(1);
    expect(decoded.sizes!.reduce((a, b) => a + b, 0)).toBe(frame.length - 5 - headerLength);
    // One flipped bit in a value: the CRC-32 check refuses the frame.
    const flipped = Uint8Array.from(frame);
    flipped[flipped.length - 3]! ^= 0x10;
    expect(() => decodePushFrame(flipped)).toThrow(/CRC-32/);
    // Cut short: refused, not a partial delivery.
    expect(() => decodePushFrame(frame.subarray(0, frame.length - 1))).toThrow(/malformed|CRC/);
    ws.socket.close();
  });

  it('are refused on the JSON protocol', async () => {
    await fill('json');
    const ws = await open('brook.v1.json');
    expect(ws.welcome.features).not.toContain('stored_batches');
    ws.socket.send(JSON.stringify({ type: 'subscribe', id: 1, sub: 'x', topic: 'json', partition: 0, credits: { records: 10 }, stored_batches: true }));
    await vi.waitFor(() => expect(ws.text.some((f) => f.type === 'error')).toBe(true));
    expect(ws.text.find((f) => f.type === 'error')).toMatchObject({ id: 1, code: 'INVALID_FRAME', message: expect.stringMatching(/brook\.v1\.bin/) });
    ws.socket.close();
  });
});
