/**
 * Stream positions and the restart dedupe (docs/cdc.md, "Exactly once"): every streamed record
 * carries `(commit LSN, index in the transaction)` in its headers; the last record of a
 * partition is its highest position, because the LogWriter appends in order.
 */
import type { Engine, RecordHeaders } from '../engine/index.js';
import { parseLsn, type Lsn } from './lsn.js';

export const LSN_HEADER = 'cdc-lsn';
export const SEQ_HEADER = 'cdc-seq';
export const SNAPSHOT_HEADER = 'cdc-snapshot';

export interface StreamPosition {
  readonly lsn: Lsn;
  readonly seq: number;
}

/** True when `(lsn, seq)` is at or before `floor`. */
export function atOrBefore(lsn: Lsn, seq: number, floor: StreamPosition): boolean {
  return lsn < floor.lsn || (lsn === floor.lsn && seq <= floor.seq);
}

export function positionOf(headers: RecordHeaders): StreamPosition | null {
  const lsn = headers[LSN_HEADER];
  const seq = headers[SEQ_HEADER];
  if (lsn === undefined || seq === undefined) return null;
  return { lsn: parseLsn(lsn), seq: Number(seq) };
}

/** The position of a partition's last record, or null when it has none from the stream. */
export async function lastPosition(engine: Engine, topic: string, partition: number): Promise<StreamPosition | null> {
  const { highWatermark, lowWatermark } = await engine.watermarks(topic, partition);
  if (highWatermark === 0 || highWatermark <= lowWatermark) return null;
  const read = await engine.read(topic, partition, highWatermark - 1, { maxRecords: 1 });
  const last = read.records[read.records.length - 1];
  return last ? positionOf(last.headers) : null;
}

export function floorKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}
