import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { growingPercentFor, keepHeapHeadroom, MAX_GROWING_PERCENT } from '../../src/lib/heap-headroom.js';
import { until } from '../client/scripted-server.js';

const MiB = 1024 * 1024;

describe('growingPercentFor', () => {
  it('puts the next full collection at live + headroom while the heap is small', () => {
    expect(growingPercentFor(20 * MiB, 64 * MiB)).toBe(320);
    expect(growingPercentFor(64 * MiB, 64 * MiB)).toBe(100);
    expect(growingPercentFor(127 * MiB, 64 * MiB)).toBe(51);
  });

  it("leaves a heap of at least twice the headroom to V8's own factor", () => {
    expect(growingPercentFor(128 * MiB, 64 * MiB)).toBe(0);
    expect(growingPercentFor(4096 * MiB, 64 * MiB)).toBe(0);
  });

  it('caps the factor for a near-empty heap and is off without headroom', () => {
    expect(growingPercentFor(1 * MiB, 64 * MiB)).toBe(MAX_GROWING_PERCENT);
    expect(growingPercentFor(0, 64 * MiB)).toBe(MAX_GROWING_PERCENT);
    expect(growingPercentFor(20 * MiB, 0)).toBe(0);
  });
});

describe('keepHeapHeadroom', () => {
  it('sets the percent at start, recomputes it after a full collection, and restores V8 on stop', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    let live = 16 * MiB;
    const applied: number[] = [];
    const stop = keepHeapHeadroom(64 * MiB, { liveBytes: () => live, setGrowingPercent: (p) => applied.push(p) });
    expect(applied).toEqual([400]);
    live = 32 * MiB;
    gc(); // a full (mark-compact) collection: the observer hears of it after this turn
    await until(() => applied.length === 2);
    expect(applied).toEqual([400, 200]);
    live = 256 * MiB;
    gc();
    await until(() => applied.length === 3);
    expect(applied).toEqual([400, 200, 0]);
    stop(); // already V8's factor: nothing to restore
    expect(applied).toEqual([400, 200, 0]);
  });

  it('gives V8 its own factor back when stopped', () => {
    const applied: number[] = [];
    const stop = keepHeapHeadroom(64 * MiB, { liveBytes: () => 8 * MiB, setGrowingPercent: (p) => applied.push(p) });
    stop();
    expect(applied).toEqual([800, 0]);
  });
});
