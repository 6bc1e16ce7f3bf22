/**
 * How a session puts records into outbound frames: JSON text on `brook.v1.json`, binary on
 * `brook.v1.bin` (docs/protocol.md). Chosen once per connection; subscriptions and fetches ask
 * it for their frames, so credit accounting and the frame agree on what a record weighs.
 */
import type { ReadResult, StoredRecord } from '../engine/index.js';
import { BinaryKind, binaryRecordSize, encodeRecordFrame, encodeRecordFrameFromBatches, encodeStoredFrame, type BatchRecordsPush } from './binary-frames.js';
import { encodeFrame, type RequestId } from './frames.js';
import { recordsJson, type RecordCodec } from './record-codec.js';

/** A frame as handed to the transport: text, or a binary message. */
export type OutboundFrame = string | Uint8Array;

export interface RecordsPush {
  /** How many of the records the frame carries (a prefix); 0 when the first did not fit. */
  readonly sent: number;
  /** Their size as byte credit counts it. */
  readonly bytes: number;
  /** When nothing fit: the first record's size, the byte credit it needs. */
  readonly firstSize: number;
  /** The frame's `next_offset`. */
  readonly nextOffset: number;
  /** Null when nothing was sent. */
  readonly frame: OutboundFrame | null;
}

export interface RecordFrames {
  /**
   * A `records` push of the longest prefix of `records` within `maxRecords` and, when
   * `countBytes`, `maxBytes`. `readNextOffset` is where the read that returned `records` ended.
   */
  records(
    sub: string,
    partition: number,
    records: readonly StoredRecord[],
    readNextOffset: number,
    maxRecords: number,
    countBytes: boolean,
    maxBytes: number,
  ): RecordsPush;
  /** A `fetched` reply. */
  fetched(id: RequestId, result: ReadResult): OutboundFrame;
  /**
   * A `stored` push of whole stored batches (whose lengths add up to `bytes`), delivering their
   * records from `from`; null where the encoding has no such frame (JSON).
   */
  stored(sub: string, partition: number, from: number, nextOffset: number, batches: readonly Uint8Array[], bytes: number): OutboundFrame | null;
  /**
   * Where the encoding can build a `records` push straight from stored batches (binary): the
   * push {@link RecordFrames.records} would make of the same records, from `from` on, without
   * decoding them. `readNextOffset` is where the read that returned the batches ended.
   */
  readonly fromBatches?: (
    sub: string,
    partition: number,
    batches: readonly Uint8Array[],
    from: number,
    readNextOffset: number,
    maxRecords: number,
    countBytes: boolean,
    maxBytes: number,
  ) => BatchRecordsPush;
}

const NOTHING = (firstSize: number, nextOffset: number): RecordsPush => ({ sent: 0, bytes: 0, firstSize, nextOffset, frame: null });

function nextOffsetAfter(records: readonly StoredRecord[], sent: number, readNextOffset: number): number {
  return sent === records.length ? readNextOffset : records[sent]!.offset;
}

/** JSON text frames; a record weighs the UTF-8 length of its JSON object as it appears in the frame. */
export function jsonRecordFrames(codec: RecordCodec): RecordFrames {
  return {
    records(sub, partition, records, readNextOffset, maxRecords, countBytes, maxBytes) {
      const limit = Math.min(records.length, maxRecords);
      let json = '[';
      let sent = 0;
      let bytes = 0;
      for (; sent < limit; sent++) {
        const text = codec.recordJson(records[sent]!);
        if (countBytes) {
          const size = Buffer.byteLength(text);
          if (bytes + size > maxBytes) {
            if (sent === 0) return NOTHING(size, records[0]!.offset);
            break;
          }
          bytes += size;
        }
        json += sent === 0 ? text : `,${text}`;
      }
      if (sent === 0) return NOTHING(1, readNextOffset);
      const nextOffset = nextOffsetAfter(records, sent, readNextOffset);
      const frame = encodeFrame({ type: 'records', sub, partition, records: `${json}]`, next_offset: nextOffset });
      return { sent, bytes, firstSize: 0, nextOffset, frame };
    },
    fetched(id, result) {
      return encodeFrame({
        type: 'fetched',
        id,
        records: recordsJson(codec, result.records),
        next_offset: result.nextOffset,
        high_watermark: result.highWatermark,
        low_watermark: result.lowWatermark,
      });
    },
    stored: () => null,
  };
}

/** Binary frames: stored bytes copied as they are; a record weighs its encoded size ({@link binaryRecordSize}). */
export const binaryRecordFrames: RecordFrames = {
  records(sub, partition, records, readNextOffset, maxRecords, countBytes, maxBytes) {
    const limit = Math.min(records.length, maxRecords);
    let sent = 0;
    let bytes = 0;
    for (; sent < limit; sent++) {
      const size = binaryRecordSize(records[sent]!);
      if (countBytes && bytes + size > maxBytes) {
        if (sent === 0) return NOTHING(size, records[0]!.offset);
        break;
      }
      bytes += size;
    }
    if (sent === 0) return NOTHING(1, readNextOffset);
    const nextOffset = nextOffsetAfter(records, sent, readNextOffset);
    const frame = encodeRecordFrame(BinaryKind.records, { sub, partition, next_offset: nextOffset }, records, sent, bytes);
    return { sent, bytes, firstSize: 0, nextOffset, frame };
  },
  fetched(id, result) {
    let bytes = 0;
    for (const r of result.records) bytes += binaryRecordSize(r);
    const header = { id, next_offset: result.nextOffset, high_watermark: result.highWatermark, low_watermark: result.lowWatermark };
    return encodeRecordFrame(BinaryKind.fetched, header, result.records, result.records.length, bytes);
  },
  stored(sub, partition, from, nextOffset, batches, bytes) {
    return encodeStoredFrame({ sub, partition, from, next_offset: nextOffset }, batches, bytes);
  },
  fromBatches(sub, partition, batches, from, readNextOffset, maxRecords, countBytes, maxBytes) {
    const header = (nextOffset: number): object => ({ sub, partition, next_offset: nextOffset });
    return encodeRecordFrameFromBatches(header, batches, from, readNextOffset, maxRecords, countBytes, maxBytes);
  },
};
