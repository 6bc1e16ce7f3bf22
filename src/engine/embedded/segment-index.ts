/**
 * Sparse indexes of one segment, kept in memory and written beside the segment as two files:
 *
 *   <base>.index      entries of 8 bytes:  u32 relativeOffset · u32 position
 *   <base>.timeindex  entries of 12 bytes: u64 maxTimestamp   · u32 relativeOffset
 *
 * An entry points at the start of a batch; one is added every `intervalBytes` of log, after a
 * corrupt region (so reads can jump past it) and for the segment's last batch when it is sealed.
 * Both files hold the same number of entries; a pair that disagrees, or any entry out of order or
 * past the segment's end, makes the loader reject them and the segment gets re-scanned.
 */
const TWO_POW_32 = 2 ** 32;

export class SegmentIndex {
  private relOffsets: Uint32Array;
  private positions: Uint32Array;
  private timestamps: Float64Array;
  private length = 0;

  constructor(capacity = 64) {
    this.relOffsets = new Uint32Array(capacity);
    this.positions = new Uint32Array(capacity);
    this.timestamps = new Float64Array(capacity);
  }

  get entries(): number {
    return this.length;
  }

  get lastPosition(): number {
    return this.length === 0 ? -1 : this.positions[this.length - 1]!;
  }

  get lastTimestamp(): number {
    return this.length === 0 ? -1 : this.timestamps[this.length - 1]!;
  }

  /** Bytes of memory held; used to keep the number of loaded indexes bounded. */
  get byteSize(): number {
    return this.relOffsets.byteLength + this.positions.byteLength + this.timestamps.byteLength;
  }

  add(relOffset: number, position: number, maxTimestamp: number): void {
    if (this.length > 0 && position <= this.positions[this.length - 1]!) return;
    if (this.length === this.relOffsets.length) this.grow();
    this.relOffsets[this.length] = relOffset;
    this.positions[this.length] = position;
    this.timestamps[this.length] = maxTimestamp;
    this.length++;
  }

  /** Position of the last indexed batch starting at or before `relOffset` (0 if none). */
  positionFor(relOffset: number): number {
    const i = this.floor(this.relOffsets, relOffset);
    return i < 0 ? 0 : this.positions[i]!;
  }

  /**
   * Position to start scanning for the first record with timestamp >= `timestamp`: the batch
   * after the last entry whose max timestamp is still below it.
   */
  positionForTimestamp(timestamp: number): number {
    // Entries are in log order and timestamps never decrease within a partition.
    let lo = 0;
    let hi = this.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamps[mid]! < timestamp) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : this.positions[found]!;
  }

  /** Drops entries at or past `position` (after truncating a torn tail). */
  truncate(position: number): void {
    while (this.length > 0 && this.positions[this.length - 1]! >= position) this.length--;
  }

  serialize(): { index: Buffer; timeIndex: Buffer } {
    const index = Buffer.allocUnsafe(this.length * 8);
    const timeIndex = Buffer.allocUnsafe(this.length * 12);
    for (let i = 0; i < this.length; i++) {
      index.writeUInt32LE(this.relOffsets[i]!, i * 8);
      index.writeUInt32LE(this.positions[i]!, i * 8 + 4);
      const ts = this.timestamps[i]!;
      timeIndex.writeUInt32LE(ts % TWO_POW_32, i * 12);
      timeIndex.writeUInt32LE(Math.floor(ts / TWO_POW_32), i * 12 + 4);
      timeIndex.writeUInt32LE(this.relOffsets[i]!, i * 12 + 8);
    }
    return { index, timeIndex };
  }

  /** Parses index files; returns null when they are inconsistent with each other or the segment. */
  static deserialize(index: Buffer, timeIndex: Buffer, segmentSize: number): SegmentIndex | null {
    if (index.length % 8 !== 0 || timeIndex.length % 12 !== 0) return null;
    const n = index.length / 8;
    if (timeIndex.length / 12 !== n) return null;
    const result = new SegmentIndex(Math.max(n, 16));
    let prevPos = -1;
    let prevRel = -1;
    let prevTs = -1;
    for (let i = 0; i < n; i++) {
      const rel = index.readUInt32LE(i * 8);
      const pos = index.readUInt32LE(i * 8 + 4);
      const ts = timeIndex.readUInt32LE(i * 12) + timeIndex.readUInt32LE(i * 12 + 4) * TWO_POW_32;
      if (timeIndex.readUInt32LE(i * 12 + 8) !== rel) return null;
      if (pos <= prevPos || rel < prevRel || ts < prevTs || pos >= segmentSize) return null;
      result.add(rel, pos, ts);
      prevPos = pos;
      prevRel = rel;
      prevTs = ts;
    }
    return result;
  }

  private floor(values: Uint32Array, target: number): number {
    let lo = 0;
    let hi = this.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (values[mid]! <= target) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  private grow(): void {
    const capacity = this.relOffsets.length * 2;
    const rel = new Uint32Array(capacity);
    rel.set(this.relOffsets);
    const pos = new Uint32Array(capacity);
    pos.set(this.positions);
    const ts = new Float64Array(capacity);
    ts.set(this.timestamps);
    this.relOffsets = rel;
    this.positions = pos;
    this.timestamps = ts;
  }
}
