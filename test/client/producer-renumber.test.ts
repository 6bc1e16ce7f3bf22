/**
 * An idempotent producer whose batch fails for good continues under a fresh producer id, and
 * the batches sent after it under the old id are renumbered when resent: their frames must
 * carry the new id and sequence, in both subprotocols (a binary frame is encoded once and
 * reused, so its header has to be rewritten).
 */
import { describe, expect, it } from 'vitest';
import { scriptedSessions, until } from './scripted-server.js';

const start = scriptedSessions();

interface ProducerHeader {
  readonly id: string;
  readonly sequence: number;
}

describe.each(['binary', 'json'] as const)('producer renumbering (%s)', (protocol) => {
  it('resends the batches behind a failed one under the new producer id, from sequence 0', async () => {
    const { server, client } = await start({ client: { protocol } });
    const producer = client.producer<string>({ topic: 't', partition: 0, lingerMs: 0, retries: 5, retryBackoff: { baseMs: 1, capMs: 5 } });
    const first = producer.send({ value: 'a' }).catch((err: { code?: string }) => err.code);
    const second = producer.send({ value: 'b' });
    await until(() => server.produces.length === 2);
    const [a, b] = server.produces;
    const old = a!.header['producer'] as ProducerHeader;
    expect(b!.header['producer']).toEqual({ id: old.id, sequence: 1 });

    server.refuse(a!.id, 'INVALID_ARGUMENT'); // for good: the server's next expected sequence is unknown now
    server.refuse(b!.id, 'OUT_OF_ORDER_SEQUENCE'); // sent behind it: not appended, resent
    expect(await first).toBe('INVALID_ARGUMENT');
    await until(() => server.produces.length === 3);
    const resent = server.produces[2]!;
    const renumbered = resent.header['producer'] as ProducerHeader;
    expect(renumbered.id).not.toBe(old.id);
    expect(renumbered.sequence).toBe(0);
    server.ack(resent.id, 7);
    expect(await second).toEqual({ partition: 0, offset: 7 });
  });
});
