import { afterEach, describe, expect, it } from 'vitest';
import { fullJitterDelay } from '../../src/queues/index.js';
import { bytes, queueHarness, seeded, type QueueHarness } from './harness.js';

/** Kolmogorov–Smirnov distance between samples and the uniform distribution on [0, max). */
function ksUniform(samples: readonly number[], max: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  let d = 0;
  for (let i = 0; i < sorted.length; i++) {
    const cdf = sorted[i]! / max;
    d = Math.max(d, Math.abs(cdf - i / sorted.length), Math.abs(cdf - (i + 1) / sorted.length));
  }
  return d;
}

describe('full-jitter backoff', () => {
  it('draws uniformly from [0, min(cap, base·2^(n−1))) for every delivery count', () => {
    const random = seeded(7);
    const config = { baseMs: 100, capMs: 10_000 };
    for (let n = 1; n <= 10; n++) {
      const ceiling = Math.min(config.capMs, config.baseMs * 2 ** (n - 1));
      const samples = Array.from({ length: 4_000 }, () => fullJitterDelay(config, n, random));
      for (const s of samples) {
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThan(ceiling);
      }
      // KS critical value at α = 0.001 for 4,000 samples is 1.95/√4000 ≈ 0.031.
      expect(ksUniform(samples, ceiling)).toBeLessThan(0.031);
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      expect(Math.abs(mean - ceiling / 2)).toBeLessThan(ceiling * 0.03);
    }
  });

  let h: QueueHarness | undefined;
  afterEach(async () => {
    await h?.cleanup();
    h = undefined;
  });

  it('spreads redeliveries of a burst of failures evenly over the backoff window (through the queue)', async () => {
    h = await queueHarness({ random: seeded(99) });
    await h.manager.configure('burst', { backoff: { baseMs: 1_000, capMs: 1_000 }, maxDeliveries: 10 });
    const count = 1_000;
    await h.manager.enqueue('burst', Array.from({ length: count }, (_, i) => ({ value: bytes(String(i)) })));
    const got = await h.manager.receive('burst', { max: 1_000 });
    await h.manager.nack('burst', got.map((d) => d.receipt));
    expect((await h.manager.describe('burst')).delayed).toBe(count);
    // Step the injected clock through the window: each 100 ms bin should release ~100 messages.
    const bins: number[] = [];
    for (let bin = 0; bin < 10; bin++) {
      await h.advance(100);
      const released = await h.manager.receive('burst', { max: 1_000 });
      bins.push(released.length);
      await h.manager.ack('burst', released.map((d) => d.receipt));
    }
    expect(bins.reduce((a, b) => a + b, 0)).toBe(count);
    // Chi-square with 9 degrees of freedom; 27.88 is the α = 0.001 critical value.
    const chi = bins.reduce((sum, observed) => sum + (observed - 100) ** 2 / 100, 0);
    expect(chi).toBeLessThan(27.88);
  });
});
