import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal } from '../../src/server/auth/index.js';
import { Metrics } from '../../src/server/metrics.js';
import { InFlightBytes, ProduceQuotas, quotaKey, RateLimitedError, TokenBucket } from '../../src/server/quota/index.js';
import { call, codeOf, setup, type TestServer } from './setup.js';
import { bearer, hs256, SECRET } from './tokens.js';

const user = (subject: string, extra: Partial<Principal> = {}): Principal => ({
  subject,
  anonymous: false,
  admin: false,
  permissions: [],
  ...extra,
});

describe('token bucket', () => {
  it('refills at its rate up to its capacity', () => {
    const bucket = new TokenBucket(10, 10, 0);
    expect(bucket.waitMs(10, 0)).toBe(0);
    bucket.take(10, 0);
    expect(bucket.waitMs(1, 0)).toBe(100);
    expect(bucket.waitMs(5, 250)).toBe(250);
    expect(bucket.waitMs(5, 500)).toBe(0);
    expect(bucket.waitMs(10, 10_000)).toBe(0);
    bucket.take(10, 10_000);
    expect(bucket.waitMs(1, 10_000)).toBe(100); // refilled to its capacity, not beyond
  });

  it('lets a request larger than its capacity through only when full, leaving debt', () => {
    const bucket = new TokenBucket(10, 10, 0);
    expect(bucket.waitMs(50, 0)).toBe(0);
    bucket.take(50, 0);
    // 40 tokens of debt plus the 10 wanted: 5 s.
    expect(bucket.waitMs(10, 0)).toBe(5_000);
    expect(bucket.waitMs(10, 5_000)).toBe(0);
  });
});

describe('produce quotas', () => {
  const tiers = { regular: { recordsPerSecond: 10, bytesPerSecond: 1_000 }, premium: { recordsPerSecond: 100 } };

  it('throttles by records and by bytes, per key, and refills with the clock', () => {
    let now = 0;
    const reasons: string[] = [];
    const quotas = new ProduceQuotas({ tiers, now: () => now }, (r) => reasons.push(r));
    const alice = user('alice');
    expect(quotas.tryTake(alice, undefined, 10, 100)).toBeNull();
    expect(quotas.tryTake(alice, undefined, 1, 1)).toEqual({ reason: 'records', retryAfterMs: 100 });
    // Someone else has a bucket of their own.
    expect(quotas.tryTake(user('bob'), undefined, 1, 999)).toBeNull();
    expect(quotas.tryTake(user('bob'), undefined, 1, 100)).toMatchObject({ reason: 'bytes' });
    now += 100;
    expect(quotas.tryTake(alice, undefined, 1, 1)).toBeNull();
    expect(reasons).toEqual(['records', 'bytes']);
    expect(() => quotas.take(alice, undefined, 5, 1)).toThrow(RateLimitedError);
  });

  it('gives a premium principal more than a regular one', () => {
    const quotas = new ProduceQuotas({ tiers, now: () => 0 });
    let regular = 0;
    while (quotas.tryTake(user('r'), undefined, 1, 1) === null) regular++;
    let premium = 0;
    while (quotas.tryTake(user('p', { tier: 'premium' }), undefined, 1, 1) === null) premium++;
    expect(regular).toBe(10);
    expect(premium).toBe(100);
    // An unknown tier falls back to the default one.
    let unknown = 0;
    while (quotas.tryTake(user('u', { tier: 'gold' }), undefined, 1, 1) === null) unknown++;
    expect(unknown).toBe(10);
  });

  it('keys quotas by tenant, then subject, then address', () => {
    expect(quotaKey(user('a', { tenant: 'acme' }), '10.0.0.1')).toBe('tenant:acme');
    expect(quotaKey(user('a'), '10.0.0.1')).toBe('sub:a');
    expect(quotaKey(user(''), '10.0.0.1')).toBe('ip:10.0.0.1');
    expect(quotaKey(ANONYMOUS, '10.0.0.2')).toBe('ip:10.0.0.2');
  });

  it('keeps a bounded number of buckets', () => {
    const quotas = new ProduceQuotas({ tiers, maxBuckets: 3, now: () => 0 });
    for (let i = 0; i < 10; i++) quotas.tryTake(user(`u${i}`), undefined, 1, 1);
    expect(quotas.size).toBe(3);
  });

  it('refuses a configuration that cannot work', () => {
    expect(() => new ProduceQuotas({ tiers: { premium: { recordsPerSecond: 5 } } })).toThrow(/default tier/);
    expect(() => new ProduceQuotas({ tiers: { regular: { recordsPerSecond: 0 } } })).toThrow(/positive/);
    expect(new ProduceQuotas().enabled).toBe(false);
  });
});

describe('in-flight bytes', () => {
  it('bounds what is held and frees it on release', () => {
    const inFlight = new InFlightBytes(100);
    const a = inFlight.tryAcquire(60)!;
    expect(inFlight.tryAcquire(60)).toBeNull();
    expect(() => inFlight.acquire(60)).toThrow(RateLimitedError);
    a();
    a(); // idempotent
    expect(inFlight.current).toBe(0);
    // Larger than the whole bound: only alone.
    const big = inFlight.tryAcquire(500)!;
    expect(big).not.toBeNull();
    expect(inFlight.tryAcquire(1)).toBeNull();
    big();
    expect(inFlight.current).toBe(0);
  });
});

describe('HTTP produce flow control', () => {
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.cleanup();
    t = undefined;
  });

  it('answers 429 RATE_LIMITED with Retry-After, then accepts again once refilled', async () => {
    let now = 0;
    const metrics = new Metrics({ processMetrics: false });
    t = await setup({
      auth: { secret: SECRET },
      quotas: { tiers: { regular: { recordsPerSecond: 5 }, premium: { recordsPerSecond: 50 } }, now: () => now },
      metrics,
    });
    const writeAll = [{ topics: '*', actions: ['write'] }];
    const regular = bearer(await hs256({ sub: 'r', permissions: writeAll }));
    const premium = bearer(await hs256({ sub: 'p', tier: 'premium', permissions: writeAll }));
    const batch = { records: Array.from({ length: 5 }, (_, i) => ({ value: i })) };

    expect((await call(t.url, 'POST', '/v1/topics/q/records', batch, regular)).status).toBe(200);
    const refused = await call(t.url, 'POST', '/v1/topics/q/records', batch, regular);
    expect(refused.status).toBe(429);
    expect(codeOf(refused)).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // A refused batch is not written.
    expect((await t.engine.watermarks('q', 0)).highWatermark).toBe(5);

    // Premium sends ten times as much in the same instant.
    for (let i = 0; i < 10; i++) {
      expect((await call(t.url, 'POST', '/v1/topics/q/records', batch, premium)).status, `premium batch ${i}`).toBe(200);
    }
    expect((await call(t.url, 'POST', '/v1/topics/q/records', batch, premium)).status).toBe(429);

    now += 1_000;
    expect((await call(t.url, 'POST', '/v1/topics/q/records', batch, regular)).status).toBe(200);
    expect((await t.engine.watermarks('q', 0)).highWatermark).toBe(60);
    expect(await metrics.scrape()).toMatch(/^brook_throttled_total\{reason="records"\} 2$/m);
  });

  it('counts anonymous callers by address when auth is off', async () => {
    let now = 0;
    t = await setup({ quotas: { tiers: { regular: { recordsPerSecond: 2 } }, now: () => now } });
    const batch = { records: [{ value: 1 }, { value: 2 }] };
    expect((await call(t.url, 'POST', '/v1/topics/anon/records', batch)).status).toBe(200);
    expect((await call(t.url, 'POST', '/v1/topics/anon/records', batch)).status).toBe(429);
    now += 1_000;
    expect((await call(t.url, 'POST', '/v1/topics/anon/records', batch)).status).toBe(200);
  });

  it('refuses a produce past the in-flight byte bound instead of buffering it', async () => {
    const metrics = new Metrics({ processMetrics: false });
    t = await setup({ maxInFlightProduceBytes: 100, metrics });
    await call(t.url, 'POST', '/v1/topics', { name: 'busy' });
    const body = JSON.stringify({ records: [{ value: 'x'.repeat(34) }] }); // 60 bytes
    expect(body.length).toBe(60);

    // A produce whose body has not arrived yet holds its declared 60 bytes.
    const { port, hostname } = new URL(t.url);
    const slow = request({
      host: hostname,
      port,
      path: '/v1/topics/busy/records',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(body.length), expect: '100-continue' },
    });
    const answered = new Promise<number>((resolve, reject) => {
      slow.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      slow.on('error', reject);
    });
    const continued = new Promise<void>((resolve) => slow.once('continue', resolve));
    slow.flushHeaders();
    await continued;

    const refused = await call(t.url, 'POST', '/v1/topics/busy/records', body);
    expect(refused.status).toBe(429);
    expect(codeOf(refused)).toBe('RATE_LIMITED');
    expect(refused.headers.get('retry-after')).toBe('1');

    slow.end(body);
    expect(await answered).toBe(200);
    expect((await call(t.url, 'POST', '/v1/topics/busy/records', body)).status).toBe(200);
    expect(await metrics.scrape()).toMatch(/^brook_throttled_total\{reason="in_flight"\} 1$/m);
  });
});
