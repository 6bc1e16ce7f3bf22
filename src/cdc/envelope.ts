/**
 * The Debezium-style event value and the record key (docs/cdc.md, "Topics, keys, envelope").
 * A `TableSchema` is built once per Relation message and turns tuples into JSON rows.
 */
import { mapperFor, type ColumnMapper, type TypeInfo } from './type-mapping.js';
import { UNCHANGED_TOAST, type RelationColumn, type ReplicaIdentity, type Tuple } from './pgoutput-decoder.js';

/** Stands for an unchanged TOASTed value an UPDATE did not carry; the column is also listed in `unchanged_toast`. */
export const UNCHANGED_TOAST_SENTINEL = '__brook_unchanged_toast__';

export type Op = 'c' | 'u' | 'd' | 'r' | 't';

export interface EventSource {
  readonly connector: 'brook';
  readonly db: string;
  readonly schema: string;
  readonly table: string;
  readonly lsn: string;
  readonly txId: number | null;
  readonly seq: number | null;
  readonly ts_ms: number;
  /** `true` for the initial and blocking snapshots' rows, `"incremental"` for an incremental snapshot's. */
  readonly snapshot: boolean | 'last' | 'incremental';
}

export interface ChangeEvent {
  readonly before: Record<string, unknown> | null;
  readonly after: Record<string, unknown> | null;
  readonly op: Op;
  readonly source: EventSource;
  readonly ts_ms: number;
  readonly unchanged_toast?: string[];
}

export class TableSchema {
  readonly names: readonly string[];
  private readonly mappers: readonly ColumnMapper[];
  /** Indexes of the key columns: the primary key, else the replica identity's columns. */
  readonly keyIndexes: readonly number[];
  /** `"name":` of each column, JSON-escaped once. */
  private readonly jsonNames: readonly string[];
  /** `{"connector":"brook","db":...,"table":...,"lsn":"` — the part of `source` fixed per table. */
  readonly sourceHead: string;

  constructor(
    readonly oid: number,
    readonly schema: string,
    readonly table: string,
    readonly topic: string,
    readonly replicaIdentity: ReplicaIdentity,
    columns: readonly RelationColumn[],
    primaryKey: readonly string[],
    types: ReadonlyMap<number, TypeInfo>,
  ) {
    this.names = columns.map((c) => c.name);
    this.mappers = columns.map((c) => mapperFor(c.typeOid, types));
    const pk = primaryKey.map((name) => this.names.indexOf(name)).filter((i) => i >= 0);
    this.keyIndexes = pk.length > 0 && pk.length === primaryKey.length ? pk : columns.flatMap((c, i) => (c.isKey ? [i] : []));
    this.jsonNames = this.names.map((n) => `${JSON.stringify(n)}:`);
    this.sourceHead = `{"connector":"brook","db":`;
  }

  /**
   * `row()` as JSON text, built directly (the hot path: no intermediate object). Same output as
   * `JSON.stringify(this.row(...))`.
   */
  rowJson(tuple: Tuple, unchanged?: string[], onlyKey = false): string {
    let out = '{';
    if (onlyKey) {
      for (let k = 0; k < this.keyIndexes.length; k++) {
        const i = this.keyIndexes[k]!;
        out += `${k === 0 ? '' : ','}${this.jsonNames[i]!}${JSON.stringify(this.value(tuple[i], i))}`;
      }
      return `${out}}`;
    }
    const n = Math.min(tuple.length, this.names.length);
    for (let i = 0; i < n; i++) {
      const v = tuple[i];
      if (v === UNCHANGED_TOAST) unchanged?.push(this.names[i]!);
      out += `${i === 0 ? '' : ','}${this.jsonNames[i]!}${v === null || v === undefined ? 'null' : JSON.stringify(this.value(v, i))}`;
    }
    return `${out}}`;
  }

  /** The key as JSON text, `null` when the table has none. */
  keyJson(tuple: Tuple): string | null {
    if (this.keyIndexes.length === 0) return null;
    return this.rowJson(tuple, undefined, true);
  }

  /** `source` without `seq`: `{..."lsn":"<lsn>","txId":<xid>,"seq":` — the caller appends seq and `sourceTail`. */
  sourcePrefix(db: string, lsnText: string, xid: number): string {
    return `${this.sourceHead}${JSON.stringify(db)},"schema":${JSON.stringify(this.schema)},"table":${JSON.stringify(this.table)},"lsn":"${lsnText}","txId":${xid},"seq":`;
  }

  /**
   * The row as JSON. `onlyPresent` leaves out columns PostgreSQL did not send (an old-key tuple
   * carries nulls for non-key columns); unchanged TOAST columns go to `unchanged`.
   */
  row(tuple: Tuple, unchanged?: string[], onlyKey = false): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (onlyKey) {
      for (const i of this.keyIndexes) out[this.names[i]!] = this.value(tuple[i], i);
      return out;
    }
    const n = Math.min(tuple.length, this.names.length);
    for (let i = 0; i < n; i++) {
      const v = tuple[i];
      if (v === UNCHANGED_TOAST) {
        out[this.names[i]!] = UNCHANGED_TOAST_SENTINEL;
        unchanged?.push(this.names[i]!);
      } else {
        out[this.names[i]!] = this.value(v, i);
      }
    }
    return out;
  }

  /** The record key: JSON of the key columns, `null` when the table has none. */
  key(tuple: Tuple): Buffer | null {
    if (this.keyIndexes.length === 0) return null;
    const out: Record<string, unknown> = {};
    for (const i of this.keyIndexes) out[this.names[i]!] = this.value(tuple[i], i);
    return Buffer.from(JSON.stringify(out));
  }

  sameKey(a: Tuple, b: Tuple): boolean {
    for (const i of this.keyIndexes) if (a[i] !== b[i]) return false;
    return true;
  }

  private value(v: Tuple[number] | undefined, i: number): unknown {
    if (v === null || v === undefined) return null;
    if (v === UNCHANGED_TOAST) return UNCHANGED_TOAST_SENTINEL;
    return this.mappers[i]!(v);
  }
}

export function encodeEvent(event: ChangeEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}
