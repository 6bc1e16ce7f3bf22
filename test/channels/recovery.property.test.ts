/**
 * Property tests (fast-check) for what recovery promises: for any history bound, any number of
 * publications and any `since`, a recovered subscription gets exactly the offsets after `since`
 * up to the top, in order, with no gap and no duplicate — or recovered:false, and then only when
 * the history really no longer holds them (or the epoch differs). Also the channel pattern
 * matcher against a reference regular expression.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Channel } from '../../src/channels/channel.js';
import { resolveNamespace } from '../../src/channels/namespaces.js';
import { parseChannelName } from '../../src/channels/names.js';
import { matchesChannel } from '../../src/channels/pattern.js';
import { Publication } from '../../src/channels/publication.js';

describe('recovery (property)', () => {
  it('recovers exactly (since, top] or honestly refuses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }), // history size
        fc.integer({ min: 0, max: 200 }), // publications
        fc.integer({ min: -1, max: 220 }), // since
        fc.boolean(), // same epoch
        (size, count, since, sameEpoch) => {
          const ns = resolveNamespace({ name: 'p', history: { size, ttlMs: 60_000 } });
          const channel = new Channel(parseChannelName('p:x'), ns, 'e1');
          for (let i = 0; i < count; i++) channel.commit(new Publication(channel.next++, String(i), 1_000));
          const r = channel.recover({ offset: since, epoch: sameEpoch ? 'e1' : 'e2' }, 1_000);
          const top = count - 1;
          expect(r.offset).toBe(top);
          const oldestKept = Math.max(0, count - size);
          const coverable = sameEpoch && since <= top && (since === top || (size > 0 && since + 1 >= oldestKept));
          expect(r.recovered).toBe(coverable);
          if (r.recovered === true) {
            const expected = Array.from({ length: top - since }, (_, k) => since + 1 + k);
            expect(r.missed.map((p) => p.offset)).toEqual(expected);
          } else {
            expect(r.missed).toEqual([]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('drops history older than the ttl', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 30 }), (count, expired) => {
        const ns = resolveNamespace({ name: 'p', history: { size: 100, ttlMs: 1_000 } });
        const channel = new Channel(parseChannelName('p:t'), ns, 'e');
        const old = Math.min(expired, count);
        for (let i = 0; i < count; i++) channel.commit(new Publication(channel.next++, '0', i < old ? 0 : 5_000));
        const r = channel.recover({ offset: -1, epoch: 'e' }, 5_500);
        if (old === 0) expect(r.missed).toHaveLength(count);
        else expect(r.recovered).toBe(false);
      }),
    );
  });
});

describe('channel patterns (property)', () => {
  const chars = fc.constantFrom('a', 'b', ':', '#', '.', '-');
  it('agree with a reference regular expression', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.oneof(chars, fc.constant('*')), maxLength: 8 }), fc.string({ unit: chars, maxLength: 10 }), (pattern, channel) => {
        const reference = new RegExp(`^${pattern.replace(/[.#:-]/g, (c) => `\\${c}`).replace(/\*/g, '.*')}$`);
        expect(matchesChannel(pattern, channel)).toBe(reference.test(channel));
      }),
      { numRuns: 2_000 },
    );
  });
});
