/**
 * Recovery of a clustered channel (src/channels/recovery.ts): what a subscribe read from the
 * namespace's stream, bridged to what this node has delivered by the `prev` chain. Offsets are
 * stream sequences, so a channel's offsets have holes (other channels share the stream).
 */
import { describe, expect, it } from 'vitest';
import { Channel } from '../../src/channels/channel.js';
import { resolveNamespace } from '../../src/channels/namespaces.js';
import { parseChannelName } from '../../src/channels/names.js';
import { Publication } from '../../src/channels/publication.js';
import { recoverClustered } from '../../src/channels/recovery.js';

/** The channel's messages are every third stream sequence: 3, 6, 9, ... */
const seqOf = (i: number): number => 3 * (i + 1);

function pub(i: number): Publication {
  const p = new Publication(seqOf(i), String(i), 1_000);
  p.prev = i === 0 ? 0 : seqOf(i - 1);
  return p;
}

/** A node that has delivered messages [from, to) live (its history), top = seqOf(to - 1). */
function nodeWith(from: number, to: number): Channel {
  const ns = resolveNamespace({ name: 'c', history: { size: 1000, ttlMs: 60_000 } });
  const channel = new Channel(parseChannelName('c:x'), ns, 'e1');
  for (let i = from; i < to; i++) {
    channel.commit(pub(i));
    channel.next = seqOf(i) + 1;
  }
  return channel;
}

const stream = (from: number, to: number): Publication[] => Array.from({ length: to - from }, (_, k) => pub(from + k));
const values = (r: { missed: readonly Publication[] }): number[] => r.missed.map((p) => Number(p.data));

describe('recoverClustered', () => {
  it('bridges the stream read to the live history by the prev chain', () => {
    const channel = nodeWith(50, 60); // started mid-stream: delivered 50..59 live
    const r = recoverClustered(channel, { offset: seqOf(20), epoch: 'e1' }, stream(21, 50));
    expect(r.recovered).toBe(true);
    expect(values(r)).toEqual(Array.from({ length: 39 }, (_, k) => 21 + k));
  });

  it('a stream read that ran past what this node delivered keeps only up to its top (the rest comes live)', () => {
    // The stream read reached message 70 while the node has delivered up to 59: messages 60..70
    // are still on their way live. Recovery must neither refuse nor hand them out twice.
    const channel = nodeWith(50, 60);
    const r = recoverClustered(channel, { offset: seqOf(20), epoch: 'e1' }, stream(21, 71));
    expect(r.recovered).toBe(true);
    expect(r.offset).toBe(seqOf(59));
    expect(values(r)).toEqual(Array.from({ length: 39 }, (_, k) => 21 + k));
  });

  it('a read that leaves a hole before the live history is refused, not bridged', () => {
    const channel = nodeWith(50, 60);
    const r = recoverClustered(channel, { offset: seqOf(20), epoch: 'e1' }, stream(21, 45)); // 45..49 missing
    expect(r).toMatchObject({ recovered: false, missed: [] });
  });

  it('another epoch, a position past the top and a stream that lost the messages are refused', () => {
    const channel = nodeWith(50, 60);
    expect(recoverClustered(channel, { offset: seqOf(20), epoch: 'e0' }, stream(21, 50)).recovered).toBe(false);
    expect(recoverClustered(channel, { offset: seqOf(60), epoch: 'e1' }, null).recovered).toBe(false);
    expect(recoverClustered(channel, { offset: seqOf(20), epoch: 'e1' }, 'lost').recovered).toBe(false);
  });

  it('at the top: recovered with nothing missed', () => {
    const channel = nodeWith(50, 60);
    expect(recoverClustered(channel, { offset: seqOf(59), epoch: 'e1' }, null)).toMatchObject({ recovered: true, missed: [] });
  });
});
