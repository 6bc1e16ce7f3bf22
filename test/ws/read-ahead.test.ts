// A subscription out of credit behind the head reads its next chunk ahead, from the spare half of
// the read budget: pushed in order when credit comes, dropped (budget freed) on seek, close, or
// when no credit comes for a while, and never taken from the half that waiting reads need.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jsonRecordFrames, ReadBudget, Subscription, type RecordCodec } from '../../src/broker/index.js';
import { READ_AHEAD_BYTES, READ_AHEAD_HOLD_MS } from '../../src/broker/defaults.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import * as recordCodec from '../../src/server/record-codec.js';
import { tempDir } from '../helpers/temp-dir.js';

const codec: RecordCodec = { toProduceRecord: recordCodec.toProduceRecord, recordJson: recordCodec.recordJson };
const RECORDS = 200;
const BUDGET = 4 * READ_AHEAD_BYTES;

interface Pushed {
  readonly records: { offset: number }[];
}

describe('subscription read-ahead', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  let budget: ReadBudget;
  let frames: Pushed[];
  let failures: unknown[];
  let subscription: Subscription | null;

  beforeEach(async () => {
    dir = await tempDir('brook-read-ahead-');
    engine = new EmbeddedEngine({ dataDir: dir.path, logger: pino({ level: 'silent' }) });
    await engine.open();
    await engine.createTopic('t', { partitions: 1 });
    await engine.append('t', 0, Array.from({ length: RECORDS }, (_, i) => ({ value: Buffer.from(JSON.stringify({ i })) })));
    budget = new ReadBudget(BUDGET);
    frames = [];
    failures = [];
    subscription = null;
  });
  afterEach(async () => {
    subscription?.close();
    await engine.close();
    await dir.remove();
  });

  function subscribe(records: number, offset = 0): Subscription {
    subscription = new Subscription({
      sub: 's',
      topic: 't',
      partition: 0,
      offset,
      credits: { records },
      engine,
      frames: jsonRecordFrames(codec),
      readBudget: budget,
      sink: {
        send: (f) => frames.push(JSON.parse(String(f)) as Pushed),
        writable: true,
        parkUntilWritable: () => undefined,
        subscriptionFailed: (_, err) => failures.push(err),
      },
    });
    subscription.start();
    return subscription;
  }

  const offsets = (): number[] => frames.flatMap((f) => f.records.map((r) => r.offset));
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

  it('reads ahead once out of credit, then pushes what it read in order when credit comes', async () => {
    const reads = vi.spyOn(engine, 'read');
    const sub = subscribe(10);
    await vi.waitFor(() => expect(sub.stats().readAhead).toBe(RECORDS - 10));
    expect(budget.inUse).toBe(READ_AHEAD_BYTES);
    expect(offsets()).toEqual(range(0, 10));
    expect(sub.stats().state).toBe('credit');
    const readsBeforeCredit = reads.mock.calls.length;
    expect(reads.mock.calls.at(-1)![2]).toBe(10); // the read-ahead starts where the push ended

    sub.addCredit(15, 0);
    await vi.waitFor(() => expect(offsets()).toEqual(range(0, 25)));
    // Served from what was read ahead, with the rest kept for the next credit: no new read.
    expect(reads.mock.calls.length).toBe(readsBeforeCredit);
    expect(sub.stats().readAhead).toBe(RECORDS - 25);
    expect(budget.inUse).toBe(READ_AHEAD_BYTES);

    sub.addCredit(RECORDS, 0);
    await vi.waitFor(() => expect(offsets()).toEqual(range(0, RECORDS)));
    // Caught up: nothing is held, and a caught-up subscription does not read ahead.
    await vi.waitFor(() => expect(sub.stats().state).toBe('waiting'));
    expect(budget.inUse).toBe(0);
    expect(failures).toEqual([]);
  });

  it('drops what it read ahead on seek and close, freeing the budget', async () => {
    const sub = subscribe(10);
    await vi.waitFor(() => expect(sub.stats().readAhead).toBe(RECORDS - 10));
    sub.seek(150);
    expect(sub.stats().readAhead).toBe(0);
    expect(budget.inUse).toBe(0);
    sub.addCredit(5, 0);
    sub.start();
    await vi.waitFor(() => expect(offsets()).toEqual([...range(0, 10), ...range(150, 155)]));
    await vi.waitFor(() => expect(sub.stats().readAhead).toBe(RECORDS - 155)); // out of credit again at 155
    sub.close();
    expect(budget.inUse).toBe(0);
    expect(failures).toEqual([]);
  });

  it('gives the budget back when no credit comes', async () => {
    const sub = subscribe(10);
    await vi.waitFor(() => expect(sub.stats().readAhead).toBe(RECORDS - 10));
    await vi.waitFor(() => expect(budget.inUse).toBe(0), { timeout: READ_AHEAD_HOLD_MS * 3, interval: 50 });
    expect(sub.stats().readAhead).toBe(0);
    expect(offsets()).toEqual(range(0, 10));
  });

  it('does not read ahead from the half of the budget that waiting reads need', async () => {
    const held = budget.tryAcquire(BUDGET / 2);
    const reads = vi.spyOn(engine, 'read');
    const sub = subscribe(10);
    await vi.waitFor(() => expect(sub.stats().state).toBe('credit'));
    await new Promise((r) => setTimeout(r, 50));
    expect(reads).toHaveBeenCalledTimes(1); // the push; no read-ahead
    expect(budget.inUse).toBe(held);
    // The records still come, read when the credit does.
    sub.addCredit(RECORDS, 0);
    await vi.waitFor(() => expect(offsets()).toEqual(range(0, RECORDS)));
    budget.release(held);
    expect(failures).toEqual([]);
  });
});
