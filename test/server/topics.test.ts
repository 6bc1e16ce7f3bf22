import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, codeOf, setup, type TestServer } from './setup.js';

describe('HTTP topics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await setup();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('answers health and readiness', async () => {
    expect(await call(t.url, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await call(t.url, 'GET', '/readyz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('creates, describes, lists and deletes topics', async () => {
    const created = await call(t.url, 'POST', '/v1/topics', {
      name: 'orders',
      partitions: 3,
      config: { retention_ms: 3_600_000, cleanup_policy: 'delete', durability: 'os', max_record_bytes: 2048 },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toMatch(/^application\/json/);
    expect(created.body).toEqual({
      name: 'orders',
      partitions: [
        { partition: 0, low_watermark: 0, high_watermark: 0 },
        { partition: 1, low_watermark: 0, high_watermark: 0 },
        { partition: 2, low_watermark: 0, high_watermark: 0 },
      ],
      config: {
        partitions: 3,
        retention_ms: 3_600_000,
        retention_bytes: null,
        cleanup_policy: 'delete',
        delete_retention_ms: 86_400_000,
        durability: 'os',
        segment_bytes: 64 * 1024 * 1024,
        segment_ms: 7 * 86_400_000,
        max_record_bytes: 2048,
      },
    });

    const described = await call(t.url, 'GET', '/v1/topics/orders');
    expect(described.status).toBe(200);
    expect(described.body).toEqual(created.body);

    await call(t.url, 'POST', '/v1/topics', { name: 'audit' });
    const listed = await call(t.url, 'GET', '/v1/topics');
    expect(listed.status).toBe(200);
    const names = (listed.body as { topics: { name: string }[] }).topics.map((x) => x.name).sort();
    expect(names).toEqual(['audit', 'orders']);

    const deleted = await call(t.url, 'DELETE', '/v1/topics/orders');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeNull();
    const gone = await call(t.url, 'GET', '/v1/topics/orders');
    expect(gone.status).toBe(404);
    expect(codeOf(gone)).toBe('TOPIC_NOT_FOUND');
  });

  it('refuses a duplicate topic with 409 TOPIC_EXISTS', async () => {
    expect((await call(t.url, 'POST', '/v1/topics', { name: 'dup' })).status).toBe(201);
    const again = await call(t.url, 'POST', '/v1/topics', { name: 'dup', partitions: 2 });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: { code: 'TOPIC_EXISTS', message: expect.stringContaining('dup') } });
  });

  it('refuses settings out of range with 400', async () => {
    const zero = await call(t.url, 'POST', '/v1/topics', { name: 'zero', partitions: 0 });
    expect(zero.status).toBe(400);
    expect(codeOf(zero)).toBe('INVALID_ARGUMENT');
    const policy = await call(t.url, 'POST', '/v1/topics', { name: 'p', config: { cleanup_policy: 'shred' } });
    expect(policy.status).toBe(400);
    expect(codeOf(policy)).toBe('INVALID_REQUEST');
    const unknown = await call(t.url, 'POST', '/v1/topics', { name: 'p', config: { retention: 5 } });
    expect(unknown.status).toBe(400);
    expect(codeOf(unknown)).toBe('INVALID_REQUEST');
  });

  it('does not let HTTP create, write or delete internal topics', async () => {
    const create = await call(t.url, 'POST', '/v1/topics', { name: '__mine' });
    expect(create.status).toBe(400);
    const produce = await call(t.url, 'POST', '/v1/topics/__consumer_offsets/records', { records: [{ value: 1 }] });
    expect(produce.status).toBe(400);
    expect(codeOf(produce)).toBe('INVALID_TOPIC_NAME');
    const list = await call(t.url, 'GET', '/v1/topics');
    expect((list.body as { topics: { name: string }[] }).topics.some((x) => x.name.startsWith('__'))).toBe(false);
  });
});
