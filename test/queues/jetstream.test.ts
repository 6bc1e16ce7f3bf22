/** Queues on the JetStream engine: the same QueueManager over internal topics stored in JetStream. */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { QueueManager } from '../../src/queues/index.js';
import { journalTopic } from '../../src/queues/engine-storage.js';
import { requireService, SERVICES } from '../helpers/services.js';

const servers = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');

describe.runIf(natsUp)('queues on the JetStream engine', () => {
  const prefix = `BQ${randomBytes(5).toString('hex')}`;
  const engines: JetStreamEngine[] = [];
  const open = async (): Promise<{ engine: JetStreamEngine; queues: QueueManager }> => {
    const engine = new JetStreamEngine({ servers, prefix });
    await engine.open();
    engines.push(engine);
    return { engine, queues: await QueueManager.open({ engine, timers: false, compactIntervalMs: 0 }) };
  };
  afterEach(async () => {
    for (const e of engines.splice(0)) await e.close();
    const admin = new JetStreamEngine({ servers, prefix });
    await admin.open();
    await admin.destroy();
  });

  it('enqueues, leases, acks, dead-letters, recovers after a reopen and truncates finished messages', async () => {
    let { engine, queues } = await open();
    await queues.configure('js-q', { maxDeliveries: 2 });
    await queues.enqueue('js-q', ['a', 'b', 'c'].map((v) => ({ value: Buffer.from(JSON.stringify(v)) })));
    const got = await queues.receive('js-q', { max: 3, visibilityMs: 600_000 });
    expect(got.map((d) => Buffer.from(d.value).toString())).toEqual(['"a"', '"b"', '"c"']);
    await queues.ack('js-q', [got[0]!.receipt]);
    await queues.reject('js-q', [got[1]!.receipt], 'boom');
    await queues.close();
    await engine.close();
    ({ engine, queues } = await open());
    const stats = await queues.describe('js-q');
    expect([stats.ready, stats.deadLetters]).toEqual([1, 1]); // "c" was in flight: ready again, its delivery counted
    const dead = await queues.deadLetters('js-q');
    expect(dead.map((d) => [Buffer.from(d.value).toString(), d.reason, d.lastError])).toEqual([['"b"', 'REJECTED', 'boom']]);
    const [again] = await queues.receive('js-q');
    expect([Buffer.from(again!.value).toString(), again!.deliveries]).toEqual(['"c"', 2]);
    await queues.ack('js-q', [again!.receipt]);
    await queues.compact();
    expect((await engine.watermarks(journalTopic('js-q'), 0)).lowWatermark).toBeGreaterThan(0);
    await queues.close();
  });
});
