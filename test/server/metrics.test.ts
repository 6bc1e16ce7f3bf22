import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { Metrics, OTHER_TOPICS } from '../../src/server/metrics.js';
import { call, setup, type TestServer } from './setup.js';
import { WsClient } from '../ws/setup.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * A strict reader of the Prometheus text format (0.0.4): every line is empty, a HELP, a TYPE or
 * a sample of a declared family; label values are quoted with \\, \" and \n escapes.
 */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const lines = text.split('\n');
  expect(lines.at(-1)).toBe('');
  for (const line of lines.slice(0, -1)) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(meta[3]);
        types.set(meta[2]!, meta[3]!);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (!sample) throw new Error(`not a valid exposition line: ${line}`);
    const [, name, rawLabels, rawValue] = sample;
    const labels: Record<string, string> = {};
    let rest = rawLabels ?? '';
    while (rest !== '') {
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)/.exec(rest);
      if (!label) throw new Error(`bad labels in: ${line}`);
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(label[0].length);
    }
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : Number(rawValue);
    // Go's ParseFloat, which Prometheus uses, reads NaN in any case (prom-client writes "Nan").
    if (Number.isNaN(value) && !/^nan$/i.test(rawValue!)) throw new Error(`bad value in: ${line}`);
    const family = name!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(name!) && !types.has(family)) throw new Error(`sample without a TYPE: ${line}`);
    samples.push({ name: name!, labels, value });
  }
  return samples;
}

function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

async function scrape(url: string): Promise<{ samples: Sample[]; contentType: string | null }> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return { samples: parseExposition(await res.text()), contentType: res.headers.get('content-type') };
}

describe('GET /metrics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('counts produce, fetch, requests, errors, connections and group lag', async () => {
    const before = await scrape(t.url);
    expect(before.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(valueOf(before.samples, 'brook_records_in_total', { topic: 'm' })).toBeUndefined();

    await call(t.url, 'POST', '/v1/topics', { name: 'm', partitions: 1 });
    const records = [{ key: 'k', value: { n: 1 } }, { value: 'two', headers: { h: 'v' } }, { value: null }];
    expect((await call(t.url, 'POST', '/v1/topics/m/records', { records })).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/topics/m/partitions/0/records')).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/topics/missing')).status).toBe(404);
    await call(t.url, 'POST', '/v1/groups/lagging/offsets', { offsets: [{ topic: 'm', partition: 0, offset: 1 }] });

    const { samples } = await scrape(t.url);
    // key "k" (1) + {"n":1} (7); "two" as JSON (5) + header h=v (2); a null value (0).
    const bytes = 1 + 7 + 5 + 2;
    expect(valueOf(samples, 'brook_records_in_total', { topic: 'm' })).toBe(3);
    expect(valueOf(samples, 'brook_bytes_in_total', { topic: 'm' })).toBe(bytes);
    expect(valueOf(samples, 'brook_records_out_total', { topic: 'm' })).toBe(3);
    expect(valueOf(samples, 'brook_bytes_out_total', { topic: 'm' })).toBe(bytes);
    expect(valueOf(samples, 'brook_produce_latency_seconds_count')).toBe(1);
    expect(valueOf(samples, 'brook_produce_latency_seconds_bucket', { le: '+Inf' })).toBe(1);
    expect(valueOf(samples, 'brook_http_requests_total', { route: '/v1/topics/:topic/records', code: '200' })).toBe(1);
    expect(valueOf(samples, 'brook_http_requests_total', { route: '/v1/topics/:topic', code: '404' })).toBe(1);
    expect(valueOf(samples, 'brook_errors_total', { code: 'TOPIC_NOT_FOUND' })).toBe(1);
    expect(valueOf(samples, 'brook_connections', { transport: 'http' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'brook_consumer_group_lag', { group: 'lagging', topic: 'm', partition: '0' })).toBe(2);
    expect(valueOf(samples, 'brook_fsync_duration_seconds_count')).toBe(0);
    expect(valueOf(samples, 'brook_group_coordinator')).toBe(1); // the embedded engine is its own coordinator
    expect(valueOf(samples, 'brook_group_coordinator_takeovers_total')).toBe(0); // and never takes over
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    // The previous scrape itself was counted, and unknown routes share one label.
    await call(t.url, 'GET', '/no/such/route');
    const after = (await scrape(t.url)).samples;
    expect(valueOf(after, 'brook_http_requests_total', { route: '/metrics', code: '200' })).toBeGreaterThanOrEqual(2);
    expect(valueOf(after, 'brook_http_requests_total', { route: '_unmatched', code: '404' })).toBe(1);
  });

  it('counts what WebSocket sessions produce, push and fetch, like HTTP', async () => {
    const c = await WsClient.connect(`${t.url.replace('http://', 'ws://')}/v1/ws`);
    try {
      await c.welcome();
      expect(await c.request({ type: 'produce', topic: 'wsm', partition: 0, records: [{ key: 'k', value: { n: 1 } }, { value: 'two' }] })).toMatchObject({
        type: 'produced',
      });
      expect(await c.request({ type: 'subscribe', sub: 's', topic: 'wsm', partition: 0, from: 'earliest', credits: { records: 100 } })).toMatchObject({ type: 'subscribed' });
      await c.waitForRecords('s', 2);
      expect(await c.request({ type: 'fetch', topic: 'wsm', partition: 0, offset: 1 })).toMatchObject({ type: 'fetched' });
      const { samples } = await scrape(t.url);
      // key "k" (1) + {"n":1} (7); "two" as JSON (5).
      expect(valueOf(samples, 'brook_records_in_total', { topic: 'wsm' })).toBe(2);
      expect(valueOf(samples, 'brook_bytes_in_total', { topic: 'wsm' })).toBe(13);
      // Pushed: both records; fetched from offset 1: the second again.
      expect(valueOf(samples, 'brook_records_out_total', { topic: 'wsm' })).toBe(3);
      expect(valueOf(samples, 'brook_bytes_out_total', { topic: 'wsm' })).toBe(13 + 5);
    } finally {
      await c.close();
    }
  });

  it('forgets a deleted topic', async () => {
    await call(t.url, 'POST', '/v1/topics/gone/records', { records: [{ value: 1 }] });
    expect(valueOf((await scrape(t.url)).samples, 'brook_records_in_total', { topic: 'gone' })).toBe(1);
    expect((await call(t.url, 'DELETE', '/v1/topics/gone')).status).toBe(204);
    expect(valueOf((await scrape(t.url)).samples, 'brook_records_in_total', { topic: 'gone' })).toBeUndefined();
  });
});

describe('Metrics', () => {
  it('bounds topic labels', async () => {
    const metrics = new Metrics({ maxTopicLabels: 2, processMetrics: false });
    for (const topic of ['a', 'b', 'c', 'd']) metrics.produced(topic, 1, 10, 0.001);
    let samples = parseExposition(await metrics.scrape());
    expect(samples.filter((s) => s.name === 'brook_records_in_total').map((s) => s.labels['topic'])).toEqual(['a', 'b', OTHER_TOPICS]);
    expect(valueOf(samples, 'brook_records_in_total', { topic: OTHER_TOPICS })).toBe(2);
    metrics.forgetTopic('a');
    metrics.produced('e', 1, 10, 0.001);
    samples = parseExposition(await metrics.scrape());
    expect(valueOf(samples, 'brook_records_in_total', { topic: 'e' })).toBe(1);
  });

  it('keeps a topic named like an overflow label apart from the overflow series', async () => {
    const metrics = new Metrics({ maxTopicLabels: 2, processMetrics: false });
    for (const topic of ['_other', 'a', 'b', 'c']) metrics.produced(topic, 1, 10, 0.001); // _other is a valid topic name
    const samples = parseExposition(await metrics.scrape());
    expect(samples.filter((s) => s.name === 'brook_records_in_total').map((s) => s.labels['topic'])).toEqual(['_other', 'a', OTHER_TOPICS]);
    expect(valueOf(samples, 'brook_records_in_total', { topic: '_other' })).toBe(1);
    expect(valueOf(samples, 'brook_records_in_total', { topic: OTHER_TOPICS })).toBe(2);
  });

  it('uses the registry it is given, never the global one, and bounds lag series', async () => {
    const registry = new Registry();
    const metrics = new Metrics({ registry, processMetrics: false, maxLagSeries: 2 });
    metrics.observeFsync(0.002);
    metrics.trackConsumerLag({
      listTopics: () => Promise.resolve([{ name: 't', config: {} as never, partitions: [0, 1, 2].map((p) => ({ partition: p, lowWatermark: 0, highWatermark: 10 })) }]),
      listGroups: () => Promise.resolve(['g']),
      fetchOffsets: () =>
        Promise.resolve([0, 1, 2].map((partition) => ({ topic: 't', partition, offset: 4, metadata: '', committedAt: 0 }))),
    });
    const samples = parseExposition(await registry.metrics());
    expect(valueOf(samples, 'brook_fsync_duration_seconds_count')).toBe(1);
    expect(samples.filter((s) => s.name === 'brook_consumer_group_lag')).toEqual([
      { name: 'brook_consumer_group_lag', labels: { group: 'g', topic: 't', partition: '0' }, value: 6 },
      { name: 'brook_consumer_group_lag', labels: { group: 'g', topic: 't', partition: '1' }, value: 6 },
    ]);
    const { register } = await import('prom-client');
    expect(register.getSingleMetric('brook_records_in_total')).toBeUndefined();
  });
});
