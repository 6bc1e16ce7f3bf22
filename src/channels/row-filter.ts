/**
 * Row filters for channel subscriptions (docs/channels.md, "Row filters"): a subscriber of, say,
 * `topic:cdc.public.orders` receives only the messages whose data matches every condition, e.g.
 * `[["after.status","eq","paid"],["after.total","gte",100]]`. Filters are evaluated on the publish
 * path before fan-out, after the channel's permission checks; a filter never widens access.
 *
 * Each publication's data is parsed at most once (cached on the publication) and each distinct
 * filter is evaluated at most once per publication (cached on the filter), however many
 * subscribers share it.
 */
import { ChannelError } from './errors.js';
import type { Publication } from './publication.js';

export type FilterOp = 'eq' | 'ne' | 'lt' | 'lte' | 'gt' | 'gte' | 'in' | 'exists';
type Scalar = string | number | boolean | null;

/** One condition: a dot path into the message data, an operator and (except `exists`) a value. */
export type FilterCondition = readonly [path: string, op: FilterOp, value?: Scalar | readonly Scalar[] | boolean];

/** Conditions, all of which must hold. */
export type RowFilterSpec = readonly FilterCondition[];

export const MAX_FILTER_CONDITIONS = 16;
export const MAX_FILTER_PATH_DEPTH = 8;
export const MAX_FILTER_IN_VALUES = 256;

const OPS: ReadonlySet<string> = new Set<FilterOp>(['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'exists']);

interface Compiled {
  readonly path: readonly string[];
  readonly test: (value: unknown) => boolean;
}

/** A validated, compiled filter; `key` is its canonical text (subscribers with equal keys share one). */
export class RowFilter {
  private lastPub: Publication | null = null;
  private lastResult = false;

  private constructor(
    readonly key: string,
    private readonly conditions: readonly Compiled[],
  ) {}

  /** Validates `spec` (anything the client sent); throws INVALID_FILTER with what is wrong. */
  static parse(spec: unknown): RowFilter {
    if (!Array.isArray(spec) || spec.length === 0 || spec.length > MAX_FILTER_CONDITIONS) {
      throw invalid(`a filter is an array of 1 to ${MAX_FILTER_CONDITIONS} conditions [path, op, value]`);
    }
    const compiled = spec.map((c: unknown, i) => compile(c, i));
    return new RowFilter(JSON.stringify(spec), compiled);
  }

  /** Whether the publication's data satisfies every condition (data that is not JSON never does). */
  matches(pub: Publication): boolean {
    if (this.lastPub === pub) return this.lastResult;
    const data = parsedData(pub);
    let ok = data !== UNPARSABLE;
    for (let i = 0; ok && i < this.conditions.length; i++) {
      const c = this.conditions[i]!;
      ok = c.test(valueAt(data, c.path));
    }
    this.lastPub = pub;
    this.lastResult = ok;
    return ok;
  }
}

const UNPARSABLE = Symbol('unparsable');
const parsedCache = new WeakMap<Publication, unknown>();

function parsedData(pub: Publication): unknown {
  if (parsedCache.has(pub)) return parsedCache.get(pub);
  let value: unknown;
  try {
    value = JSON.parse(pub.data);
  } catch {
    value = UNPARSABLE;
  }
  parsedCache.set(pub, value);
  return value;
}

function valueAt(data: unknown, path: readonly string[]): unknown {
  let v = data;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
  }
  return v;
}

function compile(condition: unknown, index: number): Compiled {
  if (!Array.isArray(condition) || condition.length < 2 || condition.length > 3) {
    throw invalid(`condition ${index} must be [path, op, value]`);
  }
  const [path, op, value] = condition as [unknown, unknown, unknown];
  if (typeof path !== 'string' || path === '' || path.length > 256) throw invalid(`condition ${index}: path must be a non-empty string`);
  const parts = path.split('.');
  if (parts.length > MAX_FILTER_PATH_DEPTH || parts.some((p) => p === '')) {
    throw invalid(`condition ${index}: path must be at most ${MAX_FILTER_PATH_DEPTH} non-empty dot-separated keys`);
  }
  if (typeof op !== 'string' || !OPS.has(op)) throw invalid(`condition ${index}: op must be one of ${[...OPS].join(', ')}`);
  return { path: parts, test: tester(op as FilterOp, value, index) };
}

function tester(op: FilterOp, value: unknown, index: number): (v: unknown) => boolean {
  switch (op) {
    case 'exists': {
      const want = value === undefined ? true : value;
      if (typeof want !== 'boolean') throw invalid(`condition ${index}: exists takes true or false`);
      return (v) => (v !== undefined) === want;
    }
    case 'in': {
      if (!Array.isArray(value) || value.length === 0 || value.length > MAX_FILTER_IN_VALUES || !value.every(isScalar)) {
        throw invalid(`condition ${index}: in takes an array of 1 to ${MAX_FILTER_IN_VALUES} strings, numbers, booleans or nulls`);
      }
      const set = new Set<unknown>(value);
      return (v) => set.has(v);
    }
    case 'eq':
    case 'ne': {
      if (!isScalar(value)) throw invalid(`condition ${index}: ${op} takes a string, number, boolean or null`);
      return op === 'eq' ? (v) => v === value : (v) => v !== undefined && v !== value;
    }
    default: {
      // Ordering: numbers with numbers, strings with strings (CDC sends numeric and bigint as
      // strings to keep precision, so those compare as numbers when both sides parse as numbers).
      if (typeof value !== 'number' && typeof value !== 'string') throw invalid(`condition ${index}: ${op} takes a number or a string`);
      const cmp = ORDER[op];
      return (v) => {
        const c = compareValues(v, value);
        return c !== null && cmp(c);
      };
    }
  }
}

const ORDER: Readonly<Record<'lt' | 'lte' | 'gt' | 'gte', (c: number) => boolean>> = {
  lt: (c) => c < 0,
  lte: (c) => c <= 0,
  gt: (c) => c > 0,
  gte: (c) => c >= 0,
};

function compareValues(v: unknown, target: number | string): number | null {
  if (typeof target === 'number' || (typeof v === 'number' && typeof target === 'string')) {
    const a = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    const b = typeof target === 'number' ? target : target.trim() !== '' ? Number(target) : Number.NaN;
    if (Number.isNaN(a) || Number.isNaN(b)) return null;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof v !== 'string') return null;
  const numeric = v.trim() !== '' && target.trim() !== '' ? [Number(v), Number(target)] : null;
  if (numeric !== null && !Number.isNaN(numeric[0]!) && !Number.isNaN(numeric[1]!)) {
    return numeric[0]! < numeric[1]! ? -1 : numeric[0]! > numeric[1]! ? 1 : 0;
  }
  return v < target ? -1 : v > target ? 1 : 0;
}

function isScalar(v: unknown): v is Scalar {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function invalid(message: string): ChannelError {
  return new ChannelError('INVALID_FILTER', `invalid filter: ${message}`);
}
