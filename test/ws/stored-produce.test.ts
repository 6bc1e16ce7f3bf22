/**
 * Stored produce (docs/protocol.md, "Stored produce"): binary kind 0x05 frames whose records are
 * one batch in the server's stored layout, over a real WebSocket and engine — offered in
 * `welcome.features`, appended as sent, malformed ones refused with INVALID_FRAME while the
 * connection and the log carry on, and refused where the engine has no stored layout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryRecordParts, ProduceFrame, STORED_RECORD_EXTRA_BYTES } from '../../src/client/binary.js';
import type { Engine, ProduceRecord } from '../../src/engine/index.js';
import { setup, WsClient, type Frame, type WsTestServer } from './setup.js';

const BIN = { protocols: ['brook.v1.bin'] };
const decoder = new TextDecoder();

/** A kind 0x05 frame as the SDK builds it: `header` without id (added on send), the records as one stored batch. */
function storedFrame(header: Record<string, unknown>, records: readonly ProduceRecord[], producerId: string | null = null): ProduceFrame {
  const parts = records.map((r) => binaryRecordParts(r.key === null || r.key === undefined ? null : decoder.decode(r.key), r.value, r.headers));
  const size = parts.reduce((n, p) => n + p.size + STORED_RECORD_EXTRA_BYTES, 0);
  return new ProduceFrame(`,${JSON.stringify(header).slice(1, -1)}`, parts, size, undefined, { producerId });
}

async function send(c: WsClient, frame: ProduceFrame, mangle?: (bytes: Uint8Array) => void): Promise<Frame> {
  const id = c.id();
  const bytes = frame.withId(id);
  mangle?.(bytes);
  c.ws.send(bytes);
  return c.waitFor((f) => f['id'] === id);
}

describe('WebSocket protocol: stored produce (kind 0x05)', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('is listed in welcome.features on binary connections only', async () => {
    const bin = await WsClient.connect(t.wsUrl, BIN);
    expect((await bin.welcome())['features']).toContain('stored_produce');
    const json = await WsClient.connect(t.wsUrl);
    expect((await json.welcome())['features']).not.toContain('stored_produce');
    await Promise.all([bin.close(), json.close()]);
  });

  it('appends the batch as sent: offsets, keys, values (null and empty distinct) and headers', async () => {
    await t.engine.createTopic('sp', { partitions: 2 });
    const c = await WsClient.connect(t.wsUrl, BIN);
    await c.welcome();
    const records = [
      { key: Buffer.from('k1'), value: Buffer.from([0, 255, 1, 2]) },
      { key: null, value: null },
      { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: { trace: 'ab', 'ü': 'ß' } },
    ];
    expect(await send(c, storedFrame({ topic: 'sp', partition: 1 }, records))).toMatchObject({
      type: 'produced',
      offsets: [0, 1, 2].map((offset) => ({ partition: 1, offset })),
      duplicate: false,
    });
    expect(await send(c, storedFrame({ topic: 'sp', partition: 1, compact_ack: true }, records))).toMatchObject({
      offsets: { partition: 1, base: 3, count: 3 },
    });
    const stored = (await t.engine.read('sp', 1, 0)).records;
    const plain = stored.map((r) => [r.offset, r.key === null ? null : [...r.key], r.value === null ? null : [...r.value], r.headers]);
    expect(plain.slice(0, 3)).toEqual([
      [0, [...Buffer.from('k1')], [0, 255, 1, 2], {}],
      [1, null, null, {}],
      [2, [], [], { trace: 'ab', 'ü': 'ß' }],
    ]);
    expect(stored).toHaveLength(6);
    await c.close();
  });

  it('answers a resent idempotent batch as a duplicate', async () => {
    await t.engine.createTopic('sp-idem', { partitions: 1 });
    const c = await WsClient.connect(t.wsUrl, BIN);
    await c.welcome();
    const frame = storedFrame({ topic: 'sp-idem', partition: 0, producer: { id: 'p-9', sequence: 0 } }, [{ value: Buffer.from('once') }], 'p-9');
    expect(await send(c, frame)).toMatchObject({ type: 'produced', duplicate: false });
    expect(await send(c, frame)).toMatchObject({ type: 'produced', duplicate: true });
    expect((await t.engine.watermarks('sp-idem', 0)).highWatermark).toBe(1);
    await c.close();
  });

  it('refuses malformed frames with INVALID_FRAME and goes on: nothing of them is stored', async () => {
    await t.engine.createTopic('sp-bad', { partitions: 1 });
    const c = await WsClient.connect(t.wsUrl, BIN);
    await c.welcome();
    const good = (): ProduceFrame => storedFrame({ topic: 'sp-bad', partition: 0 }, [{ value: Buffer.from('v') }, { value: Buffer.from('w') }]);
    // The batch starts after the 5-byte envelope and the header room.
    const batchAt = (bytes: Uint8Array): number => 5 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(1);
    const offsetDeltaOfSecond = (bytes: Uint8Array): void => {
      const at = batchAt(bytes) + 56;
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      view.setUint32(at + 4 + view.getUint32(at, true) + 4, 7, true);
    };
    expect(await send(c, good(), offsetDeltaOfSecond)).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringMatching(/record 1: offsetDelta 7 is not its index/) });
    expect(await send(c, good(), (b) => (b[batchAt(b)] = 0))).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringMatching(/batch magic/) });
    const cut = good().withId(c.id());
    c.ws.send(cut.subarray(0, cut.length - 3));
    expect(await c.waitFor((f) => f['type'] === 'error' && String(f['message']).includes('bytes the frame holds'))).toMatchObject({ code: 'INVALID_FRAME' });
    const unpartitioned = storedFrame({ topic: 'sp-bad' }, [{ value: Buffer.from('v') }]);
    expect(await send(c, unpartitioned)).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringMatching(/needs an explicit partition/) });
    const wrongProducer = storedFrame({ topic: 'sp-bad', partition: 0, producer: { id: 'p-1', sequence: 0 } }, [{ value: Buffer.from('v') }], 'p-2');
    expect(await send(c, wrongProducer)).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringMatching(/producer id is not the one in the frame header/) });
    expect((await t.engine.watermarks('sp-bad', 0)).highWatermark).toBe(0);
    // The connection is still good.
    expect(await send(c, good())).toMatchObject({ type: 'produced', offsets: [{ partition: 0, offset: 0 }, { partition: 0, offset: 1 }] });
    await c.close();
  });

  it('holds a batch to max_batch_records and the topic max_record_bytes', async () => {
    const small = await setup({ maxBatchRecords: 2 });
    try {
      await small.engine.createTopic('sp-lim', { partitions: 1, maxRecordBytes: 64 });
      const c = await WsClient.connect(small.wsUrl, BIN);
      await c.welcome();
      const three = storedFrame({ topic: 'sp-lim', partition: 0 }, [1, 2, 3].map((n) => ({ value: Buffer.from([n]) })));
      expect(await send(c, three)).toMatchObject({ type: 'error', code: 'MESSAGE_TOO_LARGE' });
      const big = storedFrame({ topic: 'sp-lim', partition: 0 }, [{ value: Buffer.alloc(100) }]);
      expect(await send(c, big)).toMatchObject({ type: 'error', code: 'MESSAGE_TOO_LARGE' });
      expect((await small.engine.watermarks('sp-lim', 0)).highWatermark).toBe(0);
      await c.close();
    } finally {
      await small.cleanup();
    }
  });
});

describe('WebSocket protocol: stored produce on an engine without a stored layout', () => {
  it('is not offered, and a kind 0x05 frame is refused with INVALID_FRAME', async () => {
    // The engine as one without appendStored (as the JetStream engine is).
    const hide = (engine: Engine): Engine =>
      new Proxy(engine, {
        get(target, prop, receiver) {
          if (prop === 'appendStored' || prop === 'checkStoredBatch') return undefined;
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    const t = await setup({ wrapEngine: hide });
    try {
      await t.engine.createTopic('sp-none', { partitions: 1 });
      const c = await WsClient.connect(t.wsUrl, BIN);
      expect((await c.welcome())['features']).not.toContain('stored_produce');
      const frame = storedFrame({ topic: 'sp-none', partition: 0 }, [{ value: Buffer.from('v') }]);
      expect(await send(c, frame)).toMatchObject({ type: 'error', code: 'INVALID_FRAME', message: expect.stringMatching(/not offered by this server/) });
      await c.close();
    } finally {
      await t.cleanup();
    }
  });
});
