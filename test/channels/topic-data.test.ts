/**
 * recordData: how a topic record's value becomes channel message data. The result is spliced into
 * `pub` frames and SSE `data:` lines as-is, so it must always be one line of valid JSON.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../src/engine/index.js';
import { recordData } from '../../src/channels/topic-tailer.js';

const record = (value: string | null): StoredRecord => ({ offset: 0, timestamp: 0, key: null, value: value === null ? null : Buffer.from(value), headers: {} });

describe('recordData', () => {
  it('uses one-line JSON as stored, byte for byte', () => {
    const envelope = '{"before":null,"after":{"id":"1","total":"12.50"},"op":"c", "ts_ms":1}';
    expect(recordData(record(envelope))).toBe(envelope);
    expect(recordData(record('42'))).toBe('42');
    expect(recordData(record('"a\\nb"'))).toBe('"a\\nb"'); // an escaped line break is not a line break
  });

  it('puts JSON spread over several lines on one line', () => {
    expect(recordData(record('{\n  "a": 1,\r\n  "b": [2, 3]\n}'))).toBe('{"a":1,"b":[2,3]}');
  });

  it('sends text that is not JSON as a JSON string, and a tombstone as null', () => {
    expect(recordData(record('not json\nat all'))).toBe('"not json\\nat all"');
    expect(recordData(record('{"a":'))).toBe('"{\\"a\\":"');
    expect(recordData(record(null))).toBe('null');
  });

  it('always gives one line of JSON that means what the value meant', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), fc.boolean(), (text, pretty) => {
        let value: unknown = undefined;
        try {
          value = JSON.parse(text);
        } catch {
          // not JSON: expect the string itself
        }
        const stored = pretty && value !== undefined ? JSON.stringify(value, null, 2) : text;
        const data = recordData(record(stored));
        expect(data).not.toMatch(/[\r\n]/);
        expect(JSON.parse(data)).toEqual(value === undefined ? stored : value);
      }),
      { numRuns: 300 },
    );
  });
});
