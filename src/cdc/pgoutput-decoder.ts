/**
 * Decoder of the pgoutput logical replication protocol, version 1 (PostgreSQL docs, "Logical
 * Replication Message Formats"). Pure: a message body (the XLogData payload) in, a typed message
 * out. Column values stay as PostgreSQL's text output; type-mapping.ts turns them into JSON.
 *
 * ```
 * Begin     'B' finalLsn:u64 commitTs:i64 xid:u32
 * Commit    'C' flags:u8 commitLsn:u64 endLsn:u64 commitTs:i64
 * Relation  'R' oid:u32 namespace:cstr name:cstr identity:u8 ncols:u16 {flags:u8 name:cstr type:u32 typmod:i32}*
 * Type      'Y' oid:u32 namespace:cstr name:cstr
 * Insert    'I' oid:u32 'N' tuple
 * Update    'U' oid:u32 ['K'|'O' tuple] 'N' tuple
 * Delete    'D' oid:u32 ('K'|'O') tuple
 * Truncate  'T' nrels:u32 options:u8 oid:u32*
 * tuple     ncols:u16 { 'n' | 'u' | 't' len:u32 bytes | 'b' len:u32 bytes }*
 * ```
 */
import type { Lsn } from './lsn.js';

/** A column whose TOASTed value was not changed by an UPDATE and so was not sent. */
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged-toast');

/** Text output of each column, `null` for SQL NULL. */
export type TupleValue = string | null | typeof UNCHANGED_TOAST;
export type Tuple = TupleValue[];

export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeMod: number;
  /** Part of the replica identity (the primary key by default, every column with FULL). */
  readonly isKey: boolean;
}

/** `d` default (primary key), `n` nothing, `f` full, `i` index. */
export type ReplicaIdentity = 'd' | 'n' | 'f' | 'i';

export type PgoutputMessage =
  | { readonly tag: 'begin'; readonly commitLsn: Lsn; readonly commitTime: number; readonly xid: number }
  | { readonly tag: 'commit'; readonly commitLsn: Lsn; readonly endLsn: Lsn; readonly commitTime: number }
  | { readonly tag: 'origin'; readonly name: string }
  | {
      readonly tag: 'relation';
      readonly oid: number;
      readonly schema: string;
      readonly table: string;
      readonly replicaIdentity: ReplicaIdentity;
      readonly columns: readonly RelationColumn[];
    }
  | { readonly tag: 'type'; readonly oid: number; readonly schema: string; readonly name: string }
  | { readonly tag: 'insert'; readonly relation: number; readonly after: Tuple }
  | { readonly tag: 'update'; readonly relation: number; readonly kind: 'K' | 'O' | null; readonly before: Tuple | null; readonly after: Tuple }
  | { readonly tag: 'delete'; readonly relation: number; readonly kind: 'K' | 'O'; readonly before: Tuple }
  | { readonly tag: 'truncate'; readonly relations: readonly number[]; readonly cascade: boolean; readonly restartIdentity: boolean }
  | { readonly tag: 'message'; readonly transactional: boolean; readonly prefix: string; readonly content: Uint8Array };

export class PgoutputDecodeError extends Error {
  constructor(message: string) {
    super(`pgoutput: ${message}`);
    this.name = 'PgoutputDecodeError';
  }
}

const PG_EPOCH_MS = 946_684_800_000;

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new PgoutputDecodeError(`message truncated at byte ${this.pos}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  /** Microseconds since 2000-01-01 → milliseconds since 1970 (sub-ms precision is not needed). */
  timestamp(): number {
    this.need(8);
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return Math.floor((hi * 4_294_967_296 + lo) / 1000) + PG_EPOCH_MS;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end === -1) throw new PgoutputDecodeError('unterminated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  tuple(): Tuple {
    const n = this.u16();
    const values: Tuple = new Array<TupleValue>(n);
    for (let i = 0; i < n; i++) {
      const kind = this.u8();
      switch (kind) {
        case 0x6e: // n
          values[i] = null;
          break;
        case 0x75: // u
          values[i] = UNCHANGED_TOAST;
          break;
        case 0x74: {
          // t
          const len = this.u32();
          this.need(len);
          values[i] = this.buf.toString('utf8', this.pos, this.pos + len);
          this.pos += len;
          break;
        }
        default:
          throw new PgoutputDecodeError(`unsupported column kind 0x${kind.toString(16)} (binary mode is not used)`);
      }
    }
    return values;
  }
}

/** Decodes one pgoutput message starting at `start` of `buf` (the XLogData payload). */
export function decodePgoutput(buf: Buffer, start = 0): PgoutputMessage {
  const r = new Reader(buf, start);
  const tag = r.u8();
  switch (tag) {
    case 0x42: // B
      return { tag: 'begin', commitLsn: r.u64(), commitTime: r.timestamp(), xid: r.u32() };
    case 0x43: {
      // C
      r.u8();
      return { tag: 'commit', commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.timestamp() };
    }
    case 0x4f: // O
      r.u64();
      return { tag: 'origin', name: r.cstring() };
    case 0x52: {
      // R
      const oid = r.u32();
      const schema = r.cstring();
      const table = r.cstring();
      const identity = String.fromCharCode(r.u8());
      if (identity !== 'd' && identity !== 'n' && identity !== 'f' && identity !== 'i') {
        throw new PgoutputDecodeError(`unknown replica identity ${JSON.stringify(identity)}`);
      }
      const n = r.u16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        const name = r.cstring();
        columns.push({ name, typeOid: r.u32(), typeMod: r.i32(), isKey: (flags & 1) === 1 });
      }
      return { tag: 'relation', oid, schema, table, replicaIdentity: identity, columns };
    }
    case 0x59: // Y
      return { tag: 'type', oid: r.u32(), schema: r.cstring(), name: r.cstring() };
    case 0x49: {
      // I
      const relation = r.u32();
      if (r.u8() !== 0x4e) throw new PgoutputDecodeError('insert without new tuple');
      return { tag: 'insert', relation, after: r.tuple() };
    }
    case 0x55: {
      // U
      const relation = r.u32();
      let kind: 'K' | 'O' | null = null;
      let before: Tuple | null = null;
      let next = r.u8();
      if (next === 0x4b || next === 0x4f) {
        kind = next === 0x4b ? 'K' : 'O';
        before = r.tuple();
        next = r.u8();
      }
      if (next !== 0x4e) throw new PgoutputDecodeError('update without new tuple');
      return { tag: 'update', relation, kind, before, after: r.tuple() };
    }
    case 0x44: {
      // D
      const relation = r.u32();
      const k = r.u8();
      if (k !== 0x4b && k !== 0x4f) throw new PgoutputDecodeError('delete without old tuple');
      return { tag: 'delete', relation, kind: k === 0x4b ? 'K' : 'O', before: r.tuple() };
    }
    case 0x54: {
      // T
      const n = r.u32();
      const options = r.u8();
      const relations: number[] = [];
      for (let i = 0; i < n; i++) relations.push(r.u32());
      return { tag: 'truncate', relations, cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0 };
    }
    case 0x4d: {
      // M
      const flags = r.u8();
      r.u64();
      const prefix = r.cstring();
      const len = r.u32();
      return { tag: 'message', transactional: (flags & 1) === 1, prefix, content: r.bytes(len) };
    }
    default:
      throw new PgoutputDecodeError(`unknown message type 0x${tag.toString(16)}`);
  }
}
