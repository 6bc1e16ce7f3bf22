/**
 * An idempotent producer keeps no more batches in flight than the server remembers per producer
 * (`welcome.limits.producer_batches`; 5 for a server that does not say), whatever its
 * `maxInflight`: a retry of a batch the server no longer remembers could not be recognised.
 */
import { describe, expect, it } from 'vitest';
import type { BrookClient } from '../../src/client/index.js';
import { scriptedSessions, until, type ScriptedServer } from './scripted-server.js';

const start = scriptedSessions();

/** Produce frames for topic `t` the server had received when the marker frame sent after them arrived. */
async function inFlightBefore(s: ScriptedServer, c: BrookClient): Promise<number> {
  const producer = c.producer<number>({ topic: 't', partition: 0, lingerMs: 0, batchSize: 1, maxInflight: 8 });
  for (let n = 0; n < 12; n++) void producer.send({ value: n }).catch(() => undefined);
  // Frames arrive in the order they were written: once the marker is in, so is every batch sent before it.
  void c.producer<number>({ topic: 'marker', lingerMs: 0 }).send({ value: 0 }).catch(() => undefined);
  await until(() => s.produces.some((p) => p.header['topic'] === 'marker'));
  return s.produces.filter((p) => p.header['topic'] === 't').length;
}

describe('idempotent producer window', () => {
  it('keeps to 5 batches in flight against a server that does not say how many it remembers', async () => {
    const { server, client } = await start({ maxInflightProduce: 16 });
    expect(await inFlightBefore(server, client)).toBe(5);
  });

  it('uses the number the server gives in producer_batches', async () => {
    const { server, client } = await start({ maxInflightProduce: 16, producerBatches: 8 });
    expect(await inFlightBefore(server, client)).toBe(8);
  });
});
