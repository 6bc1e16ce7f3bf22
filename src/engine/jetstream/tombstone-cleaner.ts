import type { JetStreamManager, NatsConnection } from 'nats';
import { type ReadConsumerPool, scanStream, sequenceOf } from './consumers.js';
import { isTombstone, parseDelivery } from './record-codec.js';

interface Tombstone {
  readonly seq: number;
  readonly subject: string;
  readonly timestamp: number;
}

interface PartitionScan {
  /** Every stream sequence up to here has been looked at. */
  scannedThrough: number;
  /** Tombstones found and not yet expired, in sequence (and so time) order. */
  readonly pending: Tombstone[];
}

/**
 * The part of compaction JetStream does not do. `max_msgs_per_subject: 1` on a subject per key
 * already keeps only the latest record of each key; what is left is removing tombstones (null
 * values) once they are older than `deleteRetentionMs`. Each pass reads only the headers of what
 * was appended since the last pass, remembers tombstones (bounded per partition; past the bound
 * the scan pauses until some expire), and purges expired ones with a subject filter and an upper
 * sequence bound, so a newer record of the same key is never touched. Several Brook nodes may
 * run this at once: purging twice is harmless.
 */
export class TombstoneCleaner {
  private readonly partitions = new Map<string, PartitionScan>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly pool: ReadConsumerPool,
    private readonly maxPendingPerPartition: number,
    private readonly timeoutMs: number,
  ) {}

  /** Returns the number of tombstones purged. */
  async clean(stream: string, deleteRetentionMs: number, now: number): Promise<number> {
    let scan = this.partitions.get(stream);
    if (!scan) this.partitions.set(stream, (scan = { scannedThrough: 0, pending: [] }));
    const { state } = await this.jsm.streams.info(stream);
    const from = Math.max(scan.scannedThrough + 1, state.first_seq);
    if (state.messages > 0 && from <= state.last_seq && scan.pending.length < this.maxPendingPerPartition) {
      const until = state.last_seq;
      const s = scan;
      await scanStream(
        this.nc,
        this.pool,
        stream,
        { start: { kind: 'sequence', sequence: from }, headersOnly: true, batch: 1000, timeoutMs: this.timeoutMs, untilSequence: until },
        (msgs) => {
          for (const msg of msgs) {
            const seq = sequenceOf(msg);
            if (isTombstone(msg)) {
              if (s.pending.length >= this.maxPendingPerPartition) return false;
              s.pending.push({ seq, subject: msg.subject, timestamp: parseDelivery(msg.reply)?.timestamp ?? now });
            }
            s.scannedThrough = seq;
          }
          return true;
        },
      );
      if (scan.pending.length < this.maxPendingPerPartition) scan.scannedThrough = Math.max(scan.scannedThrough, until);
    }
    let purged = 0;
    try {
      for (const t of scan.pending) {
        if (t.timestamp + deleteRetentionMs > now) break;
        // Removes this key's messages up to the tombstone; a newer record of the key stays.
        await this.jsm.streams.purge(stream, { filter: t.subject, seq: t.seq + 1 });
        purged++;
      }
    } finally {
      scan.pending.splice(0, purged);
    }
    return purged;
  }

  forget(stream: string): void {
    this.partitions.delete(stream);
  }
}
