// The server-wide read budget: reads hold at most what it grants, fetches are refused with a
// retriable RATE_LIMITED while it is spent, and subscriptions wait instead of failing.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { budgetedRead, jsonRecordFrames, MIN_READ_GRANT_BYTES, ReadBudget, Subscription, type RecordCodec } from '../../src/broker/index.js';
import { EmbeddedEngine } from '../../src/engine/embedded/index.js';
import * as recordCodec from '../../src/server/record-codec.js';
import { tempDir } from '../helpers/temp-dir.js';

const codec: RecordCodec = { toProduceRecord: recordCodec.toProduceRecord, recordJson: recordCodec.recordJson };
const KiB = 1024;

describe('ReadBudget', () => {
  it('grants what is asked or what is left, and nothing below the least grant', () => {
    const budget = new ReadBudget(256 * KiB);
    expect(budget.tryAcquire(100 * KiB)).toBe(100 * KiB);
    expect(budget.tryAcquire(1024 * KiB)).toBe(156 * KiB); // what is left
    expect(budget.inUse).toBe(256 * KiB);
    expect(budget.tryAcquire(1)).toBe(0);
    budget.release(100 * KiB);
    expect(budget.tryAcquire(MIN_READ_GRANT_BYTES)).toBe(MIN_READ_GRANT_BYTES);
    // 36 KiB left: less than the least grant, so a large read is refused rather than starved…
    expect(budget.tryAcquire(1024 * KiB)).toBe(0);
    // …while a read that wants no more than what is left still gets it.
    expect(budget.tryAcquire(10 * KiB)).toBe(10 * KiB);
    expect(() => new ReadBudget(1)).toThrow(RangeError);
  });
});

describe('reads under the budget', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let engine: EmbeddedEngine;
  beforeEach(async () => {
    dir = await tempDir('brook-read-budget-');
    engine = new EmbeddedEngine({ dataDir: dir.path, logger: pino({ level: 'silent' }) });
    await engine.open();
    await engine.createTopic('big', { partitions: 1 });
    // 64 records of 8 KiB: 512 KiB in all.
    await engine.append('big', 0, Array.from({ length: 64 }, () => ({ value: Buffer.alloc(8 * KiB, 120) })));
  });
  afterEach(async () => {
    await engine.close();
    await dir.remove();
  });

  it('bounds a fetch by its grant and refuses one while the budget is spent', async () => {
    const budget = new ReadBudget(MIN_READ_GRANT_BYTES);
    const read = { topic: 'big', partition: 0, offset: 0, limits: { maxRecords: 1000, maxBytes: 16 * 1024 * KiB } };
    const count = await budgetedRead(engine, budget, read, (r) => {
      expect(budget.inUse).toBe(MIN_READ_GRANT_BYTES); // held while the reply is built
      return r.records.length;
    });
    expect(count).toBeLessThanOrEqual(MIN_READ_GRANT_BYTES / (8 * KiB) + 1); // the grant, plus at most one record
    expect(count).toBeGreaterThan(0);
    expect(budget.inUse).toBe(0);

    const held = budget.tryAcquire(MIN_READ_GRANT_BYTES);
    await expect(budgetedRead(engine, budget, read, (r) => r)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    budget.release(held);
    await expect(budgetedRead(engine, budget, read, (r) => r.records.length)).resolves.toBeGreaterThan(0);
  });

  it('makes a subscription wait, not fail, while the budget is spent, and resume when it frees up', async () => {
    const budget = new ReadBudget(MIN_READ_GRANT_BYTES);
    const held = budget.tryAcquire(MIN_READ_GRANT_BYTES);
    const frames: string[] = [];
    const failures: unknown[] = [];
    const sub = new Subscription({
      sub: 's',
      topic: 'big',
      partition: 0,
      offset: 0,
      credits: { records: 1000 },
      engine,
      frames: jsonRecordFrames(codec),
      readBudget: budget,
      sink: { send: (f) => frames.push(String(f)), writable: true, parkUntilWritable: () => undefined, subscriptionFailed: (_, err) => failures.push(err) },
    });
    sub.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(frames).toHaveLength(0);
    expect(failures).toHaveLength(0);
    budget.release(held);
    const deadline = Date.now() + 10_000;
    let offsets = 0;
    while (offsets < 64 && Date.now() < deadline) {
      offsets = frames.reduce((n, f) => n + (JSON.parse(f) as { records: unknown[] }).records.length, 0);
      await new Promise((r) => setTimeout(r, 10));
    }
    sub.close();
    expect(offsets).toBe(64);
    // Each frame came from one read of at most the whole budget (plus one record).
    for (const f of frames) expect((JSON.parse(f) as { records: unknown[] }).records.length).toBeLessThanOrEqual(9);
    expect(failures).toHaveLength(0);
  });

  it('holds no budget for subscriptions parked at the tail', async () => {
    // Each push asks for up to 1 MiB; two parked subscriptions holding theirs would spend this budget.
    const budget = new ReadBudget(2 * 1024 * KiB);
    const subs = ['a', 'b'].map((name) => {
      const sub = new Subscription({
        sub: name,
        topic: 'big',
        partition: 0,
        offset: 64,
        credits: { records: 1000 },
        engine,
        frames: jsonRecordFrames(codec),
        readBudget: budget,
        sink: { send: () => undefined, writable: true, parkUntilWritable: () => undefined, subscriptionFailed: () => undefined },
      });
      sub.start();
      return sub;
    });
    await vi.waitFor(() => expect(subs.map((s) => s.stats().state)).toEqual(['waiting', 'waiting']));
    expect(budget.inUse).toBe(0);
    // A fetch still gets all it asks for.
    const read = { topic: 'big', partition: 0, offset: 0, limits: { maxRecords: 1000, maxBytes: 1024 * KiB } };
    await expect(budgetedRead(engine, budget, read, (r) => r.records.length)).resolves.toBeGreaterThan(0);
    for (const sub of subs) sub.close();
  });
});
