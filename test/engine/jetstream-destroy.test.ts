// destroy() removes everything under the engine's prefix — also what channels and native queues
// keep there, outside `<prefix>.>` — and nothing of another prefix.
import { connect, type JetStreamManager } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { requireService } from '../helpers/services.js';

const natsUp = await requireService('nats');
const SERVERS = '127.0.0.1:4222';

async function streamNames(jsm: JetStreamManager, start: string): Promise<string[]> {
  const names: string[] = [];
  for await (const info of jsm.streams.list()) if (info.config.name.startsWith(start) || info.config.name.startsWith(`KV_${start}`)) names.push(info.config.name);
  return names.sort();
}

describe.runIf(natsUp)('JetStreamEngine.destroy', () => {
  const id = `${process.pid}-${Date.now().toString(36)}`.replace(/[^A-Za-z0-9-]/g, '');
  const prefix = `DESTROY-${id}`;
  const neighbour = `DESTROY-${id}X`; // shares the start of the name, not the prefix
  afterAll(async () => {
    const nc = await connect({ servers: SERVERS });
    const jsm = await nc.jetstreamManager();
    // The neighbour's, and this prefix's too should destroy() have failed.
    for (const start of [`${neighbour}_`, `${prefix}_`]) for (const name of await streamNames(jsm, start)) await jsm.streams.delete(name);
    await nc.close();
  });

  it('deletes the topic, channel, presence and native-queue streams of its prefix and leaves a neighbour prefix alone', async () => {
    const engine = new JetStreamEngine({ servers: SERVERS, prefix });
    await engine.open();
    await engine.createTopic('t', { partitions: 2 });
    await engine.append('t', 0, [{ value: Buffer.from('x') }]);
    const nc = await connect({ servers: SERVERS });
    try {
      const jsm = await nc.jetstreamManager();
      const js = nc.jetstream();
      // What channels and native queues create under the prefix, named as they name them.
      await jsm.streams.add({ name: `${prefix}_ch_room`, subjects: [`${prefix}_ch.room`] });
      await jsm.streams.add({ name: `${prefix}__q_jobs`, subjects: [`${prefix}__q.jobs`] });
      await js.views.kv(`${prefix}_presence`);
      await js.views.kv(`${prefix}__qkey`);
      await jsm.streams.add({ name: `${neighbour}_ch_room`, subjects: [`${neighbour}_ch.room`] });
      expect((await streamNames(jsm, `${prefix}_`)).length).toBeGreaterThanOrEqual(7);

      await engine.destroy();

      expect(await streamNames(jsm, `${prefix}_`)).toEqual([]);
      expect(await streamNames(jsm, `${neighbour}_`)).toEqual([`${neighbour}_ch_room`]);
    } finally {
      await nc.close();
    }
  });
});
