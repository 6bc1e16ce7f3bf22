/** The watermark window on its own: which chunk rows survive which stream changes. */
import { describe, expect, it } from 'vitest';
import { ChunkWindow, MAX_EARLY_KEYS, WATERMARK_PREFIX, WatermarkObserver, type WindowOutcome } from '../../src/cdc/watermark-window.js';
import type { ObservedTransaction } from '../../src/cdc/stream-pipeline.js';

const TX: ObservedTransaction = { waiter: { outstanding: 0 }, lsnText: '0/10', seq: 0 };
const msg = (text: string): Uint8Array => Buffer.from(text);
const rows = (...keys: number[]) => keys.map((k) => ({ keyText: `{"id":${k}}`, row: k }));
const key = (k: number): string => `{"id":${k}}`;

function setup(id = 'w1', oid = 7) {
  const emitted: number[][] = [];
  const window = new ChunkWindow<number>(id, oid, (r) => emitted.push([...r]));
  const observer = new WatermarkObserver();
  observer.open(window);
  return { window, observer, emitted };
}

describe('watermark window', () => {
  it('drops the keys changed between the watermarks, whether before or after the rows were handed over', async () => {
    const { window, observer, emitted } = setup();
    observer.change(7, key(1)); // before the low watermark: not in the window
    observer.message(WATERMARK_PREFIX, msg('low:w1'), TX);
    observer.change(7, key(2)); // early: the chunk is not read yet
    observer.change(8, key(3)); // another table
    window.setRows(rows(1, 2, 3, 4));
    observer.change(7, key(4)); // after the rows were handed over
    observer.message(WATERMARK_PREFIX, msg('high:w1'), TX);
    observer.change(7, key(1)); // after the high watermark: too late to matter
    const outcome = (await window.outcome) as Extract<WindowOutcome<number>, { kind: 'emitted' }>;
    expect(outcome.kind).toBe('emitted');
    expect(outcome.rows).toEqual([1, 3]);
    expect(emitted).toEqual([[1, 3]]);
  });

  it('ignores other prefixes, other windows and a high watermark before the low one', async () => {
    const { window, observer, emitted } = setup();
    window.setRows(rows(1));
    observer.message('brook.heartbeat', msg('low:w1'), TX);
    observer.message(WATERMARK_PREFIX, msg('low:w2'), TX);
    observer.message(WATERMARK_PREFIX, msg('high:w1'), TX); // not open yet
    expect(emitted).toEqual([]);
    observer.message(WATERMARK_PREFIX, msg('low:w1'), TX);
    observer.message(WATERMARK_PREFIX, msg('high:w1'), TX);
    expect((await window.outcome).kind).toBe('emitted');
    expect(emitted).toEqual([[1]]);
  });

  it('drops the whole chunk on a truncate inside the window', async () => {
    const { window, observer, emitted } = setup();
    observer.message(WATERMARK_PREFIX, msg('low:w1'), TX);
    observer.change(7, null);
    window.setRows(rows(1, 2));
    observer.message(WATERMARK_PREFIX, msg('high:w1'), TX);
    await window.outcome;
    expect(emitted).toEqual([[]]);
  });

  it('asks for the chunk again when too many keys change before it is handed over', async () => {
    const { window, observer, emitted } = setup();
    observer.message(WATERMARK_PREFIX, msg('low:w1'), TX);
    for (let i = 0; i <= MAX_EARLY_KEYS; i++) observer.change(7, key(i + 100));
    window.setRows(rows(1));
    observer.message(WATERMARK_PREFIX, msg('high:w1'), TX);
    expect(await window.outcome).toEqual({ kind: 'overflow' });
    expect(emitted).toEqual([]);
  });

  it('rejects the open window when the session ends, and holds one window at a time', async () => {
    const { window, observer } = setup();
    expect(() => observer.open(new ChunkWindow<number>('w2', 7, () => undefined))).toThrow(/still open/);
    observer.fail(new Error('session ended'));
    await expect(window.outcome).rejects.toThrow('session ended');
    observer.open(new ChunkWindow<number>('w3', 7, () => undefined));
  });

  it('rejects a high watermark outside a transaction', async () => {
    const { window, observer } = setup();
    window.setRows(rows(1));
    observer.message(WATERMARK_PREFIX, msg('low:w1'), null);
    observer.message(WATERMARK_PREFIX, msg('high:w1'), null);
    await expect(window.outcome).rejects.toThrow(/outside a transaction/);
  });
});
