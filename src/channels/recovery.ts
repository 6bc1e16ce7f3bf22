/**
 * Recovery answers that need more than a channel's own history (Channel.recover): a topic
 * channel's records read from the log before its window, and a clustered channel's messages read
 * from the namespace's stream, bridged to what this node delivered by the `prev` chain.
 */
import type { Channel, Recovery, StreamPosition } from './channel.js';
import type { Publication } from './publication.js';

/**
 * Older publications a topic-channel recovery read from the log (beyond its history window), or
 * what a clustered channel's recovery read from its stream ('lost': no longer held); null when
 * nothing was read.
 */
export type Prefetched = readonly Publication[] | 'lost' | null;

/** Recovery of a topic channel may start with records read from the log before the history window. */
export function recoverWith(channel: Channel, since: StreamPosition | undefined, prefetched: readonly Publication[] | null, now: number): Recovery {
  if (prefetched === null || since === undefined) return channel.recover(since, now);
  if (prefetched.length === 0) return { offset: channel.top, epoch: channel.epoch, recovered: false, missed: [] };
  const last = prefetched[prefetched.length - 1]!.offset;
  const rest = channel.recover({ offset: last, epoch: channel.epoch }, now);
  if (rest.recovered !== true) return rest;
  return { ...rest, missed: [...prefetched, ...rest.missed] };
}

/**
 * Recovery of a clustered channel: what was read from the stream, then what this node delivered
 * since, bridged by the `prev` chain (offsets are stream sequences, not contiguous).
 */
export function recoverClustered(channel: Channel, since: StreamPosition | undefined, prefetched: Prefetched): Recovery {
  const base = { offset: channel.top, epoch: channel.epoch };
  if (since === undefined) return { ...base, missed: [] };
  const lost = { ...base, recovered: false, missed: [] };
  if (since.epoch !== undefined && since.epoch !== channel.epoch) return lost;
  if (since.offset > channel.top || prefetched === 'lost') return lost;
  if (since.offset === channel.top) return { ...base, recovered: true, missed: [] };
  // The stream read runs to the stream's end, which can be past what this node has delivered (live
  // messages still on their way, or a fill under way): those reach the subscriber live, after it joins.
  const fetched = prefetched ?? [];
  const beyond = fetched.findIndex((p) => p.offset > channel.top);
  const read = beyond === -1 ? fetched : fetched.slice(0, beyond);
  const known = read.length > 0 ? read[read.length - 1]!.offset : since.offset;
  const rest = channel.history.after(known);
  if (rest.length === 0 ? known !== channel.top : rest[0]!.prev !== known) return lost;
  return { ...base, recovered: true, missed: read.length === 0 ? rest : [...read, ...rest] };
}
