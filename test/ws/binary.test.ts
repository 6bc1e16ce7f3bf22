/** The binary subprotocol brook.v1.bin over a real WebSocket and engine (docs/protocol.md, "Binary subprotocol"). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeProduceFrame } from '../../src/broker/index.js';
import { eventually, setup, WsClient, type Frame, type PushedRecord, type WsTestServer } from './setup.js';

const BIN = { protocols: ['brook.v1.json', 'brook.v1.bin'] };

describe('WebSocket protocol: binary subprotocol', () => {
  let t: WsTestServer;
  beforeAll(async () => {
    t = await setup({ maxBatchRecords: 50 });
  });
  afterAll(async () => {
    await t.cleanup();
  });

  async function connect(): Promise<WsClient> {
    const c = await WsClient.connect(t.wsUrl, BIN);
    await c.welcome();
    return c;
  }

  it('is chosen when offered; control frames stay JSON text', async () => {
    const c = await WsClient.connect(t.wsUrl, BIN);
    expect(c.ws.protocol).toBe('brook.v1.bin');
    expect((await c.welcome())['binary']).toBeUndefined();
    // A JSON produce still works on a binary connection.
    expect(await c.request({ type: 'produce', topic: 'bin-json', records: [{ value: { a: 1 } }] })).toMatchObject({ type: 'produced' });
    await c.close();
  });

  it('stores values exactly as sent and pushes them back byte for byte: null and empty distinct, headers kept', async () => {
    await t.engine.createTopic('bin-raw', { partitions: 1 });
    const c = await connect();
    const records = [
      { key: Buffer.from('k1'), value: Buffer.from([0, 255, 1, 2]) },
      { key: null, value: null },
      { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: { trace: 'ab', 'ü': 'ß' } },
      { value: Buffer.from('{"item":"book"}') },
    ];
    expect(await c.produceBinary({ topic: 'bin-raw', partition: 0 }, records)).toMatchObject({
      type: 'produced',
      offsets: [0, 1, 2, 3].map((offset) => ({ partition: 0, offset })),
      duplicate: false,
    });
    expect(await c.produceBinary({ topic: 'bin-compact', partition: 0, compact_ack: true }, records)).toMatchObject({
      type: 'produced',
      offsets: { partition: 0, base: 0, count: 4 },
    });
    const stored = (await t.engine.read('bin-raw', 0, 0)).records;
    expect(stored.map((r) => [r.key === null ? null : [...r.key], r.value === null ? null : [...r.value], r.headers])).toEqual([
      [[...Buffer.from('k1')], [0, 255, 1, 2], {}],
      [null, null, {}],
      [[], [], { trace: 'ab', 'ü': 'ß' }],
      [null, [...Buffer.from('{"item":"book"}')], {}],
    ]);

    const fetched = await c.request({ type: 'fetch', topic: 'bin-raw', partition: 0, offset: 0 });
    expect(fetched).toMatchObject({ type: 'fetched', binary: true, next_offset: 4, high_watermark: 4, low_watermark: 0 });
    const got = fetched['records'] as PushedRecord[];
    expect(got.map((r) => r.valueBytes && [...r.valueBytes])).toEqual([[0, 255, 1, 2], null, [], [...Buffer.from('{"item":"book"}')]]);
    expect(got.map((r) => r.key)).toEqual(['k1', null, '', null]);
    expect(got[2]!.headers).toEqual({ trace: 'ab', 'ü': 'ß' });
    expect(got.every((r) => r.timestamp > 0)).toBe(true);

    const subscribed = await c.request({ type: 'subscribe', sub: 's', topic: 'bin-raw', partition: 0, credits: { records: 100 } });
    expect(subscribed).toMatchObject({ type: 'subscribed', offset: 0 });
    const pushed = await c.waitForRecords('s', 4);
    expect(pushed.map((r) => r.valueBytes && [...r.valueBytes])).toEqual(got.map((r) => r.valueBytes && [...r.valueBytes]));
    expect(c.frames.filter((f) => f.type === 'records').every((f) => f['binary'] === true)).toBe(true);
    await c.close();
  });

  it('interoperates: binary-produced JSON reads back as JSON over HTTP and JSON frames, and JSON-produced values arrive as their JSON bytes', async () => {
    await t.engine.createTopic('bin-interop', { partitions: 1 });
    const bin = await connect();
    await bin.produceBinary({ topic: 'bin-interop', partition: 0 }, [{ key: Buffer.from('u'), value: Buffer.from('{"qty":2}') }, { value: Buffer.from('plain text') }]);
    const json = await WsClient.connect(t.wsUrl);
    await json.welcome();
    expect(await json.request({ type: 'produce', topic: 'bin-interop', partition: 0, records: [{ value: { n: [1, 'x'] } }] })).toMatchObject({ type: 'produced' });

    const overHttp = (await (await fetch(`${t.url}/v1/topics/bin-interop/partitions/0/records?offset=0`)).json()) as { records: PushedRecord[] };
    expect(overHttp.records.map((r) => r.value)).toEqual([{ qty: 2 }, 'plain text', { n: [1, 'x'] }]);
    const overJson = await json.request({ type: 'fetch', topic: 'bin-interop', partition: 0, offset: 0 });
    expect((overJson['records'] as PushedRecord[]).map((r) => r.value)).toEqual([{ qty: 2 }, 'plain text', { n: [1, 'x'] }]);
    const overBin = await bin.request({ type: 'fetch', topic: 'bin-interop', partition: 0, offset: 0 });
    expect((overBin['records'] as PushedRecord[]).map((r) => r.valueBytes?.toString('utf8'))).toEqual(['{"qty":2}', 'plain text', '{"n":[1,"x"]}']);
    await Promise.all([bin.close(), json.close()]);
  });

  it('counts byte credit in encoded binary record sizes and never exceeds it', async () => {
    await t.engine.createTopic('bin-credit', { partitions: 1 });
    const values = Array.from({ length: 10 }, (_, i) => Buffer.alloc(100 + i, i));
    await t.engine.append('bin-credit', 0, values.map((value) => ({ key: Buffer.from('k'), value })));
    const sizes = values.map((v) => 26 + 1 + v.length);
    const c = await connect();
    // Exactly the first three records' bytes: three are pushed, the fourth waits.
    const three = sizes[0]! + sizes[1]! + sizes[2]!;
    await c.request({ type: 'subscribe', sub: 'b', topic: 'bin-credit', partition: 0, credits: { records: 100, bytes: three } });
    const first = await c.waitForRecords('b', 3);
    expect(first.map((r) => r.size)).toEqual(sizes.slice(0, 3));
    await eventually(() => t.server.ws.sessions().flatMap((s) => s.subscriptions).find((s) => s.sub === 'b' && s.state === 'credit'), 'credit stall');
    expect(c.records('b')).toHaveLength(3);
    expect(t.server.ws.sessions().flatMap((s) => s.subscriptions).find((s) => s.sub === 'b')?.byteCredits).toBe(0);
    // One byte short of the fourth record: still nothing.
    c.send({ type: 'credit', sub: 'b', bytes: sizes[3]! - 1 });
    c.send({ type: 'credit', sub: 'b', bytes: 1 });
    await c.waitForRecords('b', 4);
    await eventually(() => t.server.ws.sessions().flatMap((s) => s.subscriptions).find((s) => s.sub === 'b' && s.state === 'credit'), 'credit stall');
    expect(c.records('b').map((r) => r.offset)).toEqual([0, 1, 2, 3]);
    await c.close();
  });

  it('pushes assigned group partitions in binary frames', async () => {
    await t.engine.createTopic('bin-group', { partitions: 2 });
    for (const p of [0, 1]) await t.engine.append('bin-group', p, [{ value: Buffer.from([p, 7]) }]);
    const c = await connect();
    const joined = await c.request({ type: 'join', group: 'g-bin', topics: ['bin-group'], credits: { records: 10 } });
    expect(joined).toMatchObject({ type: 'joined', assignment: [{ topic: 'bin-group', partition: 0 }, { topic: 'bin-group', partition: 1 }] });
    const [p0, p1] = await Promise.all([c.waitForRecords('group:g-bin:bin-group:0', 1), c.waitForRecords('group:g-bin:bin-group:1', 1)]);
    expect([...p0[0]!.valueBytes!]).toEqual([0, 7]);
    expect([...p1[0]!.valueBytes!]).toEqual([1, 7]);
    await c.close();
  });

  it('deduplicates an idempotent producer retrying a binary batch', async () => {
    await t.engine.createTopic('bin-idem', { partitions: 1 });
    const c = await connect();
    const header = { topic: 'bin-idem', partition: 0, producer: { id: 'p-bin', sequence: 0 } };
    const records = [{ value: Buffer.from('1') }, { value: Buffer.from('2') }];
    expect(await c.produceBinary(header, records)).toMatchObject({ duplicate: false, offsets: [{ offset: 0 }, { offset: 1 }] });
    expect(await c.produceBinary(header, records)).toMatchObject({ duplicate: true, offsets: [{ offset: 0 }, { offset: 1 }] });
    expect((await t.engine.watermarks('bin-idem', 0)).highWatermark).toBe(2);
    await c.close();
  });

  it('answers malformed binary frames with INVALID_FRAME and appends nothing of them', async () => {
    await t.engine.createTopic('bin-bad', { partitions: 1 });
    const c = await connect();
    const good = encodeProduceFrame({ id: 900, topic: 'bin-bad', partition: 0 }, [{ value: Buffer.from('x') }, { value: Buffer.from('y') }]);
    const errorFor = async (frame: Buffer, id?: number): Promise<Frame> => {
      const before = c.frames.length;
      c.ws.send(frame);
      return c.waitFor((f) => c.frames.indexOf(f) >= before && f.type === 'error' && (id === undefined || f['id'] === id));
    };
    // Truncated in the middle of the second record: the header is readable, so the error carries its id.
    expect(await errorFor(good.subarray(0, good.length - 2), 900)).toMatchObject({ code: 'INVALID_FRAME', message: expect.stringMatching(/truncated|past the end/) });
    // A count that disagrees with the records that follow.
    const short = Buffer.from(good);
    short.writeUInt32BE(1, 5 + Buffer.byteLength('{"id":900,"topic":"bin-bad","partition":0}'));
    expect(await errorFor(short, 900)).toMatchObject({ code: 'INVALID_FRAME', message: expect.stringMatching(/after the last/) });
    expect(await errorFor(Buffer.concat([Buffer.from([0x02]), good.subarray(1)]))).toMatchObject({ code: 'INVALID_FRAME', message: expect.stringMatching(/kind 0x02/) });
    expect(await errorFor(Buffer.from([1, 0, 0, 0, 5, 0x7b]))).toMatchObject({ code: 'INVALID_FRAME' });
    expect(await errorFor(Buffer.concat([Buffer.from([1, 0, 0, 0, 4]), Buffer.from('{id:'), Buffer.alloc(4)]))).toMatchObject({
      code: 'INVALID_FRAME',
      message: expect.stringMatching(/not UTF-8 JSON/),
    });
    expect(await errorFor(encodeProduceFrame({ id: 901, topic: 'bin-bad', partition: 0, records: [] } as never, []), 901)).toMatchObject({
      code: 'INVALID_FRAME',
      message: expect.stringMatching(/records/),
    });
    expect(await errorFor(encodeProduceFrame({ id: 902, topic: 'bin-bad', partition: 0 }, []), 902)).toMatchObject({ code: 'INVALID_FRAME' });
    // Over max_batch_records: refused before its records are decoded.
    const many = encodeProduceFrame({ id: 903, topic: 'bin-bad', partition: 0 }, Array.from({ length: 51 }, () => ({ value: null })));
    expect(await errorFor(many, 903)).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    expect((await t.engine.watermarks('bin-bad', 0)).highWatermark).toBe(0);
    // The connection still works, and a good frame appends.
    expect(await c.produceBinary({ topic: 'bin-bad', partition: 0 }, [{ value: Buffer.from('ok') }])).toMatchObject({ type: 'produced' });
    expect((await t.engine.watermarks('bin-bad', 0)).highWatermark).toBe(1);
    await c.close();
  });

  it('closes with 4000 after more than 10 malformed binary frames in a row', async () => {
    const c = await connect();
    for (let i = 0; i < 11; i++) c.ws.send(Buffer.from([0x09]));
    expect((await c.closed).code).toBe(4000);
  });

  it('keeps refusing binary frames on a JSON connection', async () => {
    const c = await WsClient.connect(t.wsUrl, { protocols: ['brook.v1.json'] });
    await c.welcome();
    c.ws.send(encodeProduceFrame({ id: 1, topic: 'bin-json-refused' }, [{ value: Buffer.from('1') }]));
    expect(await c.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'INVALID_FRAME', message: expect.stringMatching(/brook\.v1\.json/) });
    expect((await t.engine.listTopics()).map((d) => d.name)).not.toContain('bin-json-refused');
    await c.close();
  });
});
