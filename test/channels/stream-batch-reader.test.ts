/**
 * The channel cluster's batch reader against the local NATS server: it reads a subject's stored
 * messages in order, and runs at most its bound of reads at once (beyond it: null at once, and
 * the caller reads one message by direct get instead).
 */
import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamBatchReader } from '../../src/channels/stream-batch-reader.js';
import { requireService } from '../helpers/services.js';

const natsUp = await requireService('nats');

describe.runIf(natsUp)('StreamBatchReader', () => {
  const stream = `brook_test_batch_${randomUUID().slice(0, 8)}`;
  const subject = `${stream}.chat`;
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: '127.0.0.1:4222' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    const js = nc.jetstream();
    for (let i = 0; i < 50; i++) {
      await js.publish(subject, new TextEncoder().encode(`m${i}`));
      if (i % 10 === 0) await js.publish(`${stream}.other`, new TextEncoder().encode('noise'));
    }
  });

  afterAll(async () => {
    if (!nc) return;
    await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  it('reads a subject in stream order and refuses a read past its bound', async () => {
    const jsm = await nc.jetstreamManager();
    const reader = new StreamBatchReader(() => jsm, nc.jetstream(), 1);
    const first = reader.read(stream, subject, 1, 1000);
    expect(reader.inFlight).toBe(1);
    expect(await reader.read(stream, subject, 1, 1000)).toBeNull(); // over the bound: at once, nothing read

    const messages = (await first)!;
    expect(messages.map((m) => new TextDecoder().decode(m.data))).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    expect(messages.every((m, i) => i === 0 || m.seq > messages[i - 1]!.seq)).toBe(true);
    expect(reader.inFlight).toBe(0);

    const rest = await reader.read(stream, subject, messages[40]!.seq, 5); // free again, and `max` holds
    expect(rest!.map((m) => new TextDecoder().decode(m.data))).toEqual(['m40', 'm41', 'm42', 'm43', 'm44']);
  });
});
