import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fastPubAck } from '../../src/engine/jetstream/ack-pipeline.js';

describe('fastPubAck', () => {
  it('reads what JSON.parse reads from every PubAck it accepts, and declines the rest', () => {
    const ack = fc.record(
      {
        stream: fc.string({ maxLength: 20 }),
        seq: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
        domain: fc.string({ maxLength: 8 }),
        duplicate: fc.boolean(),
      },
      { requiredKeys: ['stream', 'seq'] },
    );
    fc.assert(
      fc.property(ack, (a) => {
        const text = JSON.stringify(a);
        const fast = fastPubAck(text);
        // Declining is always safe (the full parse follows); accepting must agree with JSON.parse.
        if (fast !== null) expect(fast).toEqual({ ok: true, seq: a.seq, duplicate: false });
        if (!text.includes('\\') && a.duplicate === undefined) expect(fast).not.toBeNull();
        if (a.duplicate !== undefined) expect(fast).toBeNull();
      }),
      { numRuns: 2000 },
    );
    expect(fastPubAck('{"error":{"code":503,"err_code":10071,"description":"wrong last sequence: 1"},"stream":"s","seq":1}')).toBeNull();
    expect(fastPubAck('{"stream":"s","seq":1e3}')).toBeNull();
    expect(fastPubAck('{"stream":"s","seq": 5}')).toBeNull();
    expect(fastPubAck('{"stream":"s"}')).toBeNull();
    expect(fastPubAck('not json')).toBeNull();
    // What nats-server 2.9 writes.
    expect(fastPubAck('{"stream":"DUPTEST", "seq":1}')).toEqual({ ok: true, seq: 1, duplicate: false });
    expect(fastPubAck('{"stream":"DUPTEST", "seq":1,"duplicate": true}')).toBeNull();
    // A name hiding the pattern behind escapes is left to JSON.parse.
    expect(fastPubAck(JSON.stringify({ stream: '","seq":7,"x":"', seq: 3 }))).toBeNull();
  });
});
