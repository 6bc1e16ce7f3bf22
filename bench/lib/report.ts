import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

/** A plain-text table: first column left-aligned, the rest right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => (c <= 1 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fixed = (n: number, digits = 1): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
/** How many times `a` is `b`: "3.20×", or "-" when either is missing. */
export const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || a <= 0 || b <= 0 ? '-' : `${(a / b).toFixed(2)}×`;

export interface Target {
  readonly name: string;
  /** Where the figure comes from, e.g. "log 100 B × 1 partition, Brook in-process publish". */
  readonly source: string;
  readonly value: number;
  readonly unit: string;
  readonly comparison: '>=' | '<' | '<=';
  readonly threshold: number;
  readonly met: boolean;
  /** Where the threshold comes from, when it is derived. */
  readonly note?: string;
}

export function target(
  name: string,
  source: string,
  value: number,
  unit: string,
  comparison: '>=' | '<' | '<=',
  threshold: number,
  note?: string,
): Target {
  const met = comparison === '>=' ? value >= threshold : comparison === '<=' ? value <= threshold : value < threshold;
  return { name, source, value, unit, comparison, threshold, met, ...(note === undefined ? {} : { note }) };
}

export const verdict = (t: Target): string => (t.met ? 'met' : 'MISSED');

/** Writes `bench/results/<name>-<timestamp>.json` and `bench/results/latest.json`; returns the first path. */
export function writeResults(name: string, startedAt: Date, results: unknown): string {
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const path = join(dir, `${name}-${stamp}.json`);
  const text = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(path, text);
  writeFileSync(join(dir, 'latest.json'), text);
  return path;
}
