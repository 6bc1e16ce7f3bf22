import { connect } from 'nats';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';

/**
 * Deletes everything a channel cluster and its JetStream engine keep under `prefix`: the
 * channel streams and the presence bucket, then the engine's own streams and buckets (the
 * engine's `destroy()` now deletes the first two as well; deleting them here first is harmless).
 */
export async function destroyChannelCluster(servers: string, prefix: string): Promise<void> {
  const nc = await connect({ servers });
  try {
    const jsm = await nc.jetstreamManager();
    for await (const info of jsm.streams.list()) {
      const name = info.config.name;
      if (name.startsWith(`${prefix}_ch_`) || name === `KV_${prefix}_presence`) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
  const admin = new JetStreamEngine({ servers, prefix });
  await admin.open();
  await admin.destroy();
}
