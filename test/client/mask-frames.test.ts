/**
 * ClientOptions.maskFrames (docs/client.md): `false` hands `ws` an all-zero masking key, so the
 * frames on the wire carry a zero key (ws then skips applying it) and records still arrive intact;
 * by default every frame has a random key, as the WebSocket standard asks.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketConstructor } from '../../src/client/index.js';
import { setup, type ClientTestServer } from './setup.js';

let t: ClientTestServer | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

/** A `ws` class that keeps the masking key of every binary frame the client writes. */
function recordingMasks(keys: Buffer[]): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions) {
      super(url, protocols, options);
      this.once('open', () => {
        const socket = (this as unknown as { _socket: Socket })._socket;
        const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
        socket.write = ((chunk: unknown, ...rest: unknown[]) => {
          // ws writes a frame's header (with its masking key) apart from a payload of its own.
          if (Buffer.isBuffer(chunk) && chunk.length >= 6 && chunk[0] === 0x82 && (chunk[1]! & 0x80) !== 0) {
            const length = chunk[1]! & 0x7f;
            const keyAt = length === 126 ? 4 : length === 127 ? 10 : 2;
            keys.push(Buffer.from(chunk.subarray(keyAt, keyAt + 4)));
          }
          return write(chunk, ...rest);
        }) as Socket['write'];
      });
    }
  } as unknown as WebSocketConstructor;
}

describe('SDK maskFrames', () => {
  it('false: binary frames carry an all-zero masking key, and the records arrive intact', async () => {
    t = await setup();
    await t.engine.createTopic('mf', { partitions: 1 });
    const keys: Buffer[] = [];
    const client = t.client({ WebSocket: recordingMasks(keys), maskFrames: false });
    const producer = client.producer<Uint8Array>({ topic: 'mf', partition: 0, batchSize: 50 });
    const values = Array.from({ length: 120 }, (_, i) => Uint8Array.from({ length: 1 + (i % 300) }, (_, j) => (i * 7 + j) & 0xff));
    await producer.sendMany(values.map((value) => ({ value })));
    expect(keys.length).toBeGreaterThanOrEqual(3); // batches of at most 50
    expect(keys.every((k) => k.equals(Buffer.alloc(4)))).toBe(true);
    const stored = (await t.engine.read('mf', 0, 0, { maxRecords: 200 })).records;
    expect(stored.map((r) => Buffer.from(r.value!).toString('hex'))).toEqual(values.map((v) => Buffer.from(v).toString('hex')));
    await client.close();
  });

  it('by default: every binary frame has a masking key of its own', async () => {
    t = await setup();
    await t.engine.createTopic('mr', { partitions: 1 });
    const keys: Buffer[] = [];
    const client = t.client({ WebSocket: recordingMasks(keys) });
    const producer = client.producer<Uint8Array>({ topic: 'mr', partition: 0, batchSize: 10 });
    await producer.sendMany(Array.from({ length: 40 }, (_, i) => ({ value: Uint8Array.of(i) })));
    expect(keys.length).toBeGreaterThanOrEqual(4);
    expect(keys.some((k) => k.equals(Buffer.alloc(4)))).toBe(false);
    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(keys.length);
    await client.close();
  });
});
