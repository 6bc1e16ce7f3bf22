import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeProduceFrame, decodeProduceRecords } from '../../src/broker/binary-frames.js';
import { fullJitter } from '../../src/client/backoff.js';
import { binaryRecordParts, ProduceFrame } from '../../src/client/binary.js';
import { wsUrl } from '../../src/client/connection.js';
import { Fifo } from '../../src/lib/fifo.js';
import { utf8Length, utf8LengthPortable } from '../../src/client/utf8.js';
import { parseServerFrame } from '../../src/client/wire.js';

describe('fullJitter', () => {
  it('stays in [0, min(cap, base·2^attempt))', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 0.9999999, noNaN: true }), (attempt, baseMs, capMs, r) => {
        const d = fullJitter(attempt, { baseMs, capMs }, () => r);
        return d >= 0 && d < Math.max(1, Math.min(capMs, baseMs * 2 ** attempt));
      }),
    );
    expect(fullJitter(3, { baseMs: 100, capMs: 10_000 }, () => 0.5)).toBe(400);
    expect(fullJitter(30, { baseMs: 100, capMs: 10_000 }, () => 0.5)).toBe(5000);
  });
});

describe.each([
  ['utf8Length (native on Node)', utf8Length],
  ['utf8LengthPortable (what browsers run)', utf8LengthPortable],
])('%s', (_, length) => {
  it('equals the length of the UTF-8 encoding, lone surrogates included', () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => length(s) === encoder.encode(s).length),
      { numRuns: 2000 },
    );
    expect(length('\ud800x')).toBe(encoder.encode('\ud800x').length);
  });
});

describe('Fifo', () => {
  it('behaves like an array queue', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer(), fc.constant<'shift'>('shift')), { maxLength: 3000 }), (ops) => {
        const q = new Fifo<number>();
        const model: number[] = [];
        for (const op of ops) {
          if (op === 'shift') expect(q.shift()).toBe(model.shift());
          else {
            q.push(op);
            model.push(op);
          }
          expect(q.length).toBe(model.length);
        }
        expect([...q]).toEqual(model);
        expect(q.removeWhere((n) => n % 2 === 0)).toEqual(model.filter((n) => n % 2 === 0));
        expect([...q]).toEqual(model.filter((n) => n % 2 !== 0));
      }),
    );
  });
});

describe('wsUrl', () => {
  it('maps http(s) to ws(s), adds /v1/ws to a bare origin and the token to the query', () => {
    expect(wsUrl('http://127.0.0.1:7420', undefined)).toBe('ws://127.0.0.1:7420/v1/ws');
    expect(wsUrl('https://brook.example/', 'a b')).toBe('wss://brook.example/v1/ws?token=a+b');
    expect(wsUrl('ws://h/custom/path', undefined)).toBe('ws://h/custom/path');
    expect(() => wsUrl('mailto:x@y', undefined)).toThrow(/http\(s\) or ws\(s\)/);
  });
});

describe('parseServerFrame', () => {
  it('decodes replies, pushes and errors', () => {
    expect(parseServerFrame('{"type":"produced","id":3,"offsets":[{"partition":0,"offset":5}],"duplicate":true}')).toEqual({
      type: 'reply',
      id: 3,
      reply: { type: 'produced', offsets: [{ partition: 0, offset: 5 }], duplicate: true },
    });
    expect(parseServerFrame('{"type":"records","sub":"s1","partition":2,"records":[{"offset":7,"key":null,"value":{"a":1},"headers":{},"timestamp":1}],"next_offset":8}')).toMatchObject({
      type: 'records',
      sub: 's1',
      nextOffset: 8,
      records: [{ offset: 7, key: null, value: { a: 1 } }],
    });
    expect(parseServerFrame('{"type":"error","group":"g","code":"UNKNOWN_MEMBER","message":"expired"}')).toMatchObject({
      type: 'error',
      id: undefined,
      group: 'g',
      code: 'UNKNOWN_MEMBER',
    });
    expect(parseServerFrame('{"type":"assignment","generation":4,"assignment":[],"revoked":[{"topic":"t","partition":1}]}')).toMatchObject({
      type: 'assignment',
      group: undefined,
      revoked: [{ topic: 't', partition: 1 }],
    });
    expect(parseServerFrame('{"type":"hello-from-the-future"}')).toEqual({ type: 'unknown', name: 'hello-from-the-future' });
  });

  it('refuses malformed frames with PROTOCOL_ERROR and never anything else', () => {
    for (const bad of ['nope', '[]', '{"type":1}', '{"type":"produced","offsets":[]}', '{"type":"records","sub":"s","partition":-1,"records":[],"next_offset":0}']) {
      expect(() => parseServerFrame(bad)).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
    }
    fc.assert(
      fc.property(fc.json(), (text) => {
        try {
          parseServerFrame(text);
        } catch (err) {
          expect(err).toMatchObject({ code: 'PROTOCOL_ERROR' });
        }
      }),
    );
  });
});

describe('ProduceFrame', () => {
  it('is the frame the server decodes, with the header rewritten in place for every request id', () => {
    const records = [
      binaryRecordParts('k1', new TextEncoder().encode('{"a":1}'), { trace: 'ab' }),
      binaryRecordParts(null, null, undefined),
      binaryRecordParts('ключ', new Uint8Array([0, 255, 7]), undefined),
      // Text is encoded straight into the frame: multi-byte characters, a surrogate pair and a
      // lone surrogate (written as U+FFFD) must take exactly the bytes the size counted.
      binaryRecordParts('k€', '{"v":"naïve 😀 \ud800"}', { 'ü': '€uro' }),
    ];
    const size = records.reduce((n, r) => n + r.size, 0);
    const frame = new ProduceFrame(',"topic":"orders","partition":2,"producer":{"id":"p-1","sequence":40}', records, size);
    for (const id of [1, 4_294_967_296, Number.MAX_SAFE_INTEGER, 7]) {
      const bytes = frame.withId(id);
      const decoded = decodeProduceFrame(bytes);
      if (!decoded.ok) throw new Error(decoded.message);
      expect(decoded.header).toEqual({ id, topic: 'orders', partition: 2, producer: { id: 'p-1', sequence: 40 } });
      const got = decodeProduceRecords(decoded.body, decoded.recordCount).map((r) => ({
        key: r.key === null ? null : new TextDecoder().decode(r.key),
        value: r.value === null ? null : [...r.value],
        headers: r.headers ?? {},
      }));
      expect(got).toEqual([
        { key: 'k1', value: [...new TextEncoder().encode('{"a":1}')], headers: { trace: 'ab' } },
        { key: null, value: null, headers: {} },
        { key: 'ключ', value: [0, 255, 7], headers: {} },
        { key: 'k€', value: [...new TextEncoder().encode('{"v":"naïve 😀 \ud800"}')], headers: { 'ü': '€uro' } },
      ]);
    }
    expect(() => frame.withId(-1)).toThrow(RangeError);
  });
});

describe('ProduceFrame memory reuse', () => {
  const fields = ',"topic":"t","partition":0';
  const parts = [binaryRecordParts('k', 'first value', undefined), binaryRecordParts(null, new Uint8Array([1, 2, 3]), { h: 'v' })];
  const size = parts.reduce((n, r) => n + r.size, 0);

  it('writes into a spare that is large enough (not more than twice the size) and decodes the same', () => {
    const fresh = new ProduceFrame(fields, parts, size);
    const needed = fresh.storage.length;
    const spare = new Uint8Array(needed + 40).fill(0xee); // an earlier, larger frame's leftovers
    const reused = new ProduceFrame(fields, parts, size, spare);
    expect(reused.storage).toBe(spare);
    expect(reused.withId(9)).toEqual(fresh.withId(9));
    const decoded = decodeProduceFrame(reused.withId(9));
    if (!decoded.ok) throw new Error(decoded.message);
    expect(decodeProduceRecords(decoded.body, decoded.recordCount).map((r) => r.headers ?? {})).toEqual([{}, { h: 'v' }]);
  });

  it('allocates when the spare is too small or more than twice too large', () => {
    const needed = new ProduceFrame(fields, parts, size).storage.length;
    const small = new Uint8Array(needed - 1);
    const huge = new Uint8Array(2 * needed + 1);
    expect(new ProduceFrame(fields, parts, size, small).storage).not.toBe(small);
    expect(new ProduceFrame(fields, parts, size, huge).storage).not.toBe(huge);
  });

  it('carries the same records under other header fields without their parts (a renumbered retry)', () => {
    const renumbered = ',"topic":"t","partition":0,"producer":{"id":"p-2","sequence":123456789}';
    const moved = new ProduceFrame(fields, parts, size).withFields(renumbered, new Uint8Array(4096).fill(0xee));
    expect(moved.fields).toBe(renumbered);
    expect(moved.withId(77)).toEqual(new ProduceFrame(renumbered, parts, size).withId(77));
    // And back to a shorter header: less room, same records.
    expect(moved.withFields(fields).withId(3)).toEqual(new ProduceFrame(fields, parts, size).withId(3));
  });
});

describe('welcome features', () => {
  const welcome = (extra: object): string =>
    JSON.stringify({
      type: 'welcome',
      session: 's-1',
      limits: { max_frame_bytes: 1, max_inflight_produce: 1, max_record_bytes: 1, max_batch_records: 1, heartbeat_ms: 1 },
      ...extra,
    });

  it('asks for compact acks only from a server that lists the feature', () => {
    const limitsOf = (text: string): unknown => (parseServerFrame(text) as { limits: { compactAck: boolean } }).limits.compactAck;
    expect(limitsOf(welcome({ features: ['compact_ack'] }))).toBe(true);
    expect(limitsOf(welcome({}))).toBe(false); // an older server: the field would be refused
    expect(limitsOf(welcome({ features: 'compact_ack' }))).toBe(false);
  });

  it('reads a compact ack as a run and a list as a list', () => {
    const reply = (offsets: unknown): unknown => parseServerFrame(JSON.stringify({ type: 'produced', id: 1, offsets, duplicate: false }));
    expect(reply({ partition: 2, base: 40, count: 3 })).toMatchObject({ reply: { offsets: { partition: 2, base: 40, count: 3 } } });
    expect(reply([{ partition: 0, offset: 7 }])).toMatchObject({ reply: { offsets: [{ partition: 0, offset: 7 }] } });
    expect(() => reply({ partition: 2, base: -1.5, count: 3 })).toThrow();
  });
});
