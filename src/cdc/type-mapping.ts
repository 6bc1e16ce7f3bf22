/**
 * PostgreSQL text output → JSON value, by type OID (docs/cdc.md, "Type mapping"). The
 * replication session runs with DateStyle=ISO, TimeZone=UTC and extra_float_digits=3, which the
 * timestamp and float rules below rely on.
 */
import { parsePgArray } from './pg-array.js';

export type ColumnMapper = (text: string) => unknown;

const identity: ColumnMapper = (t) => t;
const toBool: ColumnMapper = (t) => t === 't';
const toInt: ColumnMapper = (t) => Number(t);
const toFloat: ColumnMapper = (t) => {
  const n = Number(t);
  // NaN and ±Infinity have no JSON number.
  return Number.isFinite(n) ? n : t;
};
const toJson: ColumnMapper = (t) => JSON.parse(t) as unknown;
/** bytea hex output `\x0a1b...` → base64. */
const toBase64: ColumnMapper = (t) =>
  t.startsWith('\\x') ? Buffer.from(t.slice(2), 'hex').toString('base64') : Buffer.from(t, 'latin1').toString('base64');

const TIMESTAMP = /^(\d{4,})-(\d\d)-(\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-]\d\d)(?::?(\d\d))?(?::(\d\d))?)?$/;

/** `2024-05-01 12:00:00.5+00` → `2024-05-01T12:00:00.5Z`; infinity and BC dates stay as printed. */
const toTimestamptz: ColumnMapper = (t) => {
  const m = TIMESTAMP.exec(t);
  if (!m) return t;
  const offset = m[5];
  if (offset === undefined || (offset === '+00' && (m[6] ?? '00') === '00' && m[7] === undefined)) {
    return `${m[1]}-${m[2]}-${m[3]}T${m[4]}Z`;
  }
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}${offset}:${m[6] ?? '00'}${m[7] === undefined ? '' : `:${m[7]}`}`;
};
const toTimestamp: ColumnMapper = (t) => {
  const m = TIMESTAMP.exec(t);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}` : t;
};

/** Built-in scalar types whose JSON form is not the plain string. */
const SCALARS = new Map<number, ColumnMapper>([
  [16, toBool],
  [21, toInt],
  [23, toInt],
  [26, toInt],
  [700, toFloat],
  [701, toFloat],
  [114, toJson],
  [3802, toJson],
  [17, toBase64],
  [1184, toTimestamptz],
  [1114, toTimestamp],
]);

/** Array type OID → element type OID, for the built-in types. */
const ARRAYS = new Map<number, number>([
  [1000, 16],
  [1001, 17],
  [1005, 21],
  [1007, 23],
  [1016, 20],
  [1021, 700],
  [1022, 701],
  [1231, 1700],
  [1009, 25],
  [1015, 1043],
  [1014, 1042],
  [2951, 2950],
  [1115, 1114],
  [1185, 1184],
  [1182, 1082],
  [199, 114],
  [3807, 3802],
  [1028, 26],
  [1183, 1083],
  [1270, 1266],
  [1187, 1186],
  [791, 790],
]);

/** What Type messages said about non-built-in types (enum arrays are named `_<enum>`). */
export interface TypeInfo {
  readonly name: string;
}

/** Mapper for a column of type `oid`; `types` holds the custom types seen in Type messages. */
export function mapperFor(oid: number, types?: ReadonlyMap<number, TypeInfo>): ColumnMapper {
  const scalar = SCALARS.get(oid);
  if (scalar) return scalar;
  const element = ARRAYS.get(oid);
  if (element !== undefined) {
    const inner = SCALARS.get(element) ?? identity;
    return (t) => parsePgArray(t, inner);
  }
  // A custom array type (of an enum, domain, ...): elements as strings.
  if (types?.get(oid)?.name.startsWith('_')) return (t) => parsePgArray(t, identity);
  return identity;
}
