/** The JetStream-native queue backend on the real NATS server (docs/queues.md, "JetStream-native backend"). */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { JetStreamQueueService } from '../../src/queues/jetstream/index.js';
import type { Delivery } from '../../src/queues/index.js';
import { deleteNativeQueues } from '../helpers/native-queues.js';
import { requireService, SERVICES } from '../helpers/services.js';

const servers = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');
const text = (v: Uint8Array): string => Buffer.from(v).toString();
const msg = (v: string, extra: object = {}): { value: Uint8Array } => ({ value: Buffer.from(JSON.stringify(v)), ...extra });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.runIf(natsUp)('JetStream-native queues', () => {
  const prefix = `BN${randomBytes(5).toString('hex')}`;
  let engine: JetStreamEngine;
  let nc2: NatsConnection;
  let a: JetStreamQueueService; // node A: on the engine's connection
  let b: JetStreamQueueService; // node B: a connection of its own, same prefix

  beforeAll(async () => {
    engine = new JetStreamEngine({ servers, prefix });
    await engine.open();
    a = await JetStreamQueueService.open(engine.natsAccess());
    nc2 = await connect({ servers });
    b = await JetStreamQueueService.open({ nc: nc2, prefix });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    const jsm = await nc2.jetstreamManager();
    await deleteNativeQueues(jsm, prefix);
    await nc2.close();
    await engine.destroy();
    await engine.close();
  });

  it('enqueues, receives and acks; describes; refuses bad input with the queue codes', async () => {
    const ids = await a.enqueue('basic', [msg('a'), msg('b'), msg('c')]);
    expect(ids).toEqual(['1', '2', '3']);
    const got = await b.receive('basic', { max: 10 });
    expect(got.map((d) => [d.id, text(d.value), d.deliveries])).toEqual([
      ['1', '"a"', 1],
      ['2', '"b"', 1],
      ['3', '"c"', 1],
    ]);
    await a.ack('basic', got.map((d) => d.receipt)); // another node settles
    const stats = await b.describe('basic');
    expect([stats.depth, stats.inFlight, stats.ready, stats.deadLetters]).toEqual([0, 0, 0, 0]);
    expect((await a.list()).map((q) => q.name)).toContain('basic');

    // JetStream (2.9) confirms an ack of a message already acked, within its lease: not refused (docs/queues.md, "not done")
    await expect(a.ack('basic', [got[0]!.receipt])).resolves.toBeUndefined();
    expect((await a.describe('basic')).depth).toBe(0);
    await expect(a.ack('basic', ['not-a-receipt'])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
    await expect(a.receive('never-made')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    await expect(a.receive('__bad')).rejects.toMatchObject({ code: 'INVALID_QUEUE_NAME' });
    await expect(a.enqueue('basic', [msg('x', { priority: 3 })])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.enqueue('basic', [msg('x', { deadline: Date.now() + 60_000 })])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.configure('basic', { balance: 'key-sticky' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.configure('basic', { overflow: 'drop_oldest' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(a.configure('basic', { maxDeliveries: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // A change made on one node is what the other node reads back (stream description, consumer).
    await a.configure('basic', { maxDeliveries: 7, visibilityMs: 5_000, dedupWindowMs: 60_000 });
    expect((await b.configure('basic', {})).maxDeliveries).toBe(7);
    expect((await b.describe('basic')).config).toMatchObject({ maxDeliveries: 7, visibilityMs: 5_000, dedupWindowMs: 60_000 });
  });

  it('deduplicates by dedup_id and refuses past max_depth with QUEUE_FULL', async () => {
    await a.configure('dedup', { maxDepth: 2 });
    const [first] = await a.enqueue('dedup', [msg('one', { dedupId: 'k1' })]);
    const [again] = await b.enqueue('dedup', [msg('one again', { dedupId: 'k1' })]);
    expect(again).toBe(first);
    await a.enqueue('dedup', [msg('two')]);
    await expect(a.enqueue('dedup', [msg('three')])).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    expect((await a.describe('dedup')).depth).toBe(2);
    const [taken] = await a.receive('dedup');
    await a.ack('dedup', [taken!.receipt]);
    const full = await a.enqueue('dedup', [msg('fits'), msg('does not')]).catch((err: unknown) => err);
    expect(full).toMatchObject({ code: 'QUEUE_FULL', message: expect.stringContaining('1 of 2 were enqueued') });
    expect((await a.describe('dedup')).depth).toBe(2);
  });

  it('a nack with a delay redelivers later; extend keeps the lease; delayed enqueues wait', async () => {
    await a.configure('nack', { maxDeliveries: 5 });
    await a.enqueue('nack', [msg('n')]);
    const [first] = await a.receive('nack');
    await a.extend('nack', [first!.receipt]);
    await b.nack('nack', [first!.receipt], 400, 'try later');
    expect(await a.receive('nack')).toEqual([]);
    const [second] = await a.receive('nack', {}, 5_000);
    expect([second!.id, second!.deliveries]).toEqual([first!.id, 2]);
    await a.ack('nack', [second!.receipt]);

    await a.enqueue('nack', [msg('later', { delayMs: 400 })]);
    expect(await b.receive('nack')).toEqual([]);
    const [late] = await b.receive('nack', {}, 5_000);
    expect([text(late!.value), late!.deliveries]).toEqual(['"later"', 1]);
    await b.ack('nack', [late!.receipt]);
    // Pulled only after it is due: still reported as its first delivery, and retried as the second.
    await a.enqueue('nack', [msg('due', { delayMs: 50 })]);
    await sleep(300);
    const [due] = await b.receive('nack', {}, 5_000);
    expect([text(due!.value), due!.deliveries]).toEqual(['"due"', 1]);
    await b.nack('nack', [due!.receipt], 0);
    const [retry] = await a.receive('nack', {}, 5_000);
    expect([retry!.id, retry!.deliveries]).toEqual([due!.id, 2]);
    await a.ack('nack', [retry!.receipt]);
  });

  it('extend keeps a lease past its visibility; another node gets nothing meanwhile', async () => {
    await a.configure('extend', { visibilityMs: 2_000 });
    await a.enqueue('extend', [msg('long job')]);
    const [job] = await a.receive('extend');
    const other = b.receive('extend', {}, 4_000); // parked on the other node for twice the lease
    for (let i = 0; i < 8; i++) {
      await sleep(500);
      await b.extend('extend', [job!.receipt]); // any node extends
    }
    expect(await other).toEqual([]);
    await a.ack('extend', [job!.receipt]);
    expect((await b.describe('extend')).redeliveries).toBe(0);
  });

  it('an expired lease redelivers to a worker on another node; the first worker’s late settles are refused', async () => {
    await a.configure('lease', { visibilityMs: 1_000 });
    await a.enqueue('lease', [msg('l')]);
    const [held] = await a.receive('lease');
    expect(held!.leaseExpiresAt).toBeLessThanOrEqual(Date.now() + 1_000); // the deadline the receipt carries
    const [taken] = await b.receive('lease', {}, 10_000);
    expect([taken!.id, taken!.deliveries]).toEqual([held!.id, 2]);
    // Worker A's lease is over: whichever node it asks, its ack, nack, extend and reject are
    // refused (JetStream itself would confirm them and settle B's delivery).
    for (const node of [a, b]) {
      await expect(node.ack('lease', [held!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT', receipts: [held!.receipt] });
      await expect(node.nack('lease', [held!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
      await expect(node.extend('lease', [held!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
      await expect(node.reject('lease', [held!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
    }
    expect((await a.describe('lease')).inFlight).toBe(1); // still B's
    await a.ack('lease', [taken!.receipt]);
    expect((await a.describe('lease')).depth).toBe(0);
  });

  it('refuses a receipt whose deadline or queue was tampered with, without settling anything', async () => {
    await a.configure('signed', {});
    await a.configure('signed-other', {});
    await a.enqueue('signed', [msg('s')]);
    const [d] = await a.receive('signed');
    const fields = d!.receipt.split('.');
    expect(fields).toHaveLength(6);
    expect(d!.receipt.length).toBeLessThanOrEqual(64); // what the HTTP and WebSocket schemas accept
    // A longer lease (field 5), a later delivery time (field 4), another MAC, a cut receipt.
    const forged = [
      [...fields.slice(0, 4), 'zzzzz', fields[5]].join('.'),
      [...fields.slice(0, 3), (parseInt(fields[3]!, 36) + 60_000).toString(36), ...fields.slice(4)].join('.'),
      [...fields.slice(0, 5), 'A'.repeat(16)].join('.'),
      fields.slice(0, 5).join('.'),
    ];
    for (const receipt of forged) {
      await expect(b.ack('signed', [receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT', receipts: [receipt] });
    }
    // Signed for queue "signed": worthless on another queue.
    await expect(b.ack('signed-other', [d!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
    // A batch settles its valid receipts and names the invalid ones.
    await expect(b.ack('signed', [d!.receipt, forged[0]!])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT', receipts: [forged[0]] });
    expect((await a.describe('signed')).depth).toBe(0);
  });

  it('checks lease deadlines on the settling node’s clock; an extension moves the deadline for every node', async () => {
    // Node c's clock runs ahead by `skew`: time passes for Brook's checks without JetStream
    // expiring anything (the lease is 60 s of real time).
    let skew = 0;
    const c = await JetStreamQueueService.open({ nc: nc2, prefix, clock: () => Date.now() + skew });
    try {
      await a.configure('clock', { visibilityMs: 60_000 });
      await a.enqueue('clock', [msg('x'), msg('y')]);
      const [x, y] = await a.receive('clock', { max: 2 });
      skew = 40_000;
      await c.extend('clock', [x!.receipt]); // within x's deadline: moves it to c's now + 60 s
      skew = 80_000; // past both receipts' own deadlines
      await expect(c.ack('clock', [y!.receipt])).rejects.toMatchObject({ code: 'UNKNOWN_RECEIPT' });
      await c.ack('clock', [x!.receipt]); // the extension covers it
      skew = 0;
      await c.ack('clock', [y!.receipt]); // the refused ack settled nothing: y was still leased
      expect((await a.describe('clock')).depth).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('dead-letters a poison message after exactly max_deliveries, rejects at once, redrives and deletes', async () => {
    await a.configure('poison', { maxDeliveries: 3 });
    await a.enqueue('poison', [msg('p')]);
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [d] = await (i % 2 ? b : a).receive('poison', {}, 5_000);
      seen.push(d!.deliveries);
      await (i % 2 ? a : b).nack('poison', [d!.receipt], 0, `fail ${i + 1}`);
    }
    expect(seen).toEqual([1, 2, 3]);
    expect(await a.receive('poison')).toEqual([]);
    const [dead] = await a.deadLetters('poison');
    expect([text(dead!.value), dead!.reason, dead!.deliveries, dead!.lastError]).toEqual(['"p"', 'MAX_DELIVERIES', 3, 'fail 3']);

    await a.enqueue('poison', [msg('r')]);
    const [r] = await b.receive('poison');
    await b.reject('poison', [r!.receipt], 'bad payload');
    const letters = await b.deadLetters('poison');
    expect(letters.map((l) => [text(l.value), l.reason, l.lastError])).toEqual([
      ['"p"', 'MAX_DELIVERIES', 'fail 3'],
      ['"r"', 'REJECTED', 'bad payload'],
    ]);
    expect((await a.deadLetter('poison', r!.id))?.reason).toBe('REJECTED');
    expect(await a.deadLetters('poison', 10, dead!.id)).toHaveLength(1);
    expect((await a.describe('poison')).deadLetters).toBe(2);

    const [newId] = await a.redrive('poison', { ids: [dead!.id] });
    expect(newId).not.toBe(dead!.id);
    const [back] = await b.receive('poison');
    expect([back!.id, text(back!.value), back!.deliveries]).toEqual([newId, '"p"', 1]);
    await b.ack('poison', [back!.receipt]);
    expect(await a.deleteDeadLetters('poison', { all: true })).toBe(1);
    expect(await a.deadLetters('poison')).toEqual([]);
  });

  it('dead-letters through the max-deliveries advisory when the last lease expires', async () => {
    await a.configure('advisory', { maxDeliveries: 2, visibilityMs: 1_000 });
    await a.enqueue('advisory', [msg('slow')]);
    await a.receive('advisory');
    const [second] = await b.receive('advisory', {}, 10_000);
    expect(second!.deliveries).toBe(2);
    // JetStream notices the exhausted message (and sends the advisory) when a worker pulls again.
    expect(await a.receive('advisory', {}, 2_500)).toEqual([]);
    let letters = await a.deadLetters('advisory');
    for (let i = 0; i < 100 && letters.length === 0; i++) {
      await sleep(100);
      letters = await a.deadLetters('advisory');
    }
    expect(letters.map((l) => [l.reason, l.deliveries])).toEqual([['MAX_DELIVERIES', 2]]);
    await Promise.all([a.idle(), b.idle()]);
    expect((await a.deadLetters('advisory')).length).toBe(1); // both nodes got the advisory at most once between them, deduplicated anyway
    expect((await a.describe('advisory')).depth).toBe(0);
  });

  it('an advisory raised while no node runs is handled by the next node to start', async () => {
    const lonePrefix = `${prefix}x`;
    const first = await JetStreamQueueService.open({ nc: nc2, prefix: lonePrefix });
    await first.configure('lone', { maxDeliveries: 2, visibilityMs: 1_000 });
    await first.enqueue('lone', [msg('orphan')]);
    await first.receive('lone');
    await first.receive('lone', {}, 5_000); // the second and last delivery, never settled
    await first.close(); // no Brook node listens now
    await sleep(1_200);
    // Any pull makes JetStream notice the exhausted message and raise the advisory.
    const stream = `${lonePrefix}__q_lone`;
    await nc2.request(`$JS.API.CONSUMER.MSG.NEXT.${stream}.brook`, JSON.stringify({ batch: 1, expires: 500_000_000 }), { timeout: 3_000 }).catch(() => null);
    const later = await JetStreamQueueService.open({ nc: nc2, prefix: lonePrefix });
    try {
      let letters = await later.deadLetters('lone');
      for (let i = 0; i < 100 && letters.length === 0; i++) {
        await sleep(100);
        letters = await later.deadLetters('lone');
      }
      expect(letters.map((l) => [text(l.value), l.reason, l.lastError])).toEqual([['"orphan"', 'MAX_DELIVERIES', 'lease expired on the last delivery']]);
      for (let i = 0; i < 50 && (await later.describe('lone')).deadLetters !== 1; i++) await sleep(100);
      expect((await later.describe('lone')).deadLetters).toBe(1); // the captured advisory itself was removed
    } finally {
      await later.deleteQueue('lone');
      await later.close();
    }
  });

  it('two nodes with four workers process every message once', async () => {
    await a.configure('shared', { visibilityMs: 30_000 });
    const total = 300;
    const ids = new Set(await a.enqueue('shared', Array.from({ length: total }, (_, i) => msg(`m${i}`))));
    const acked: string[] = [];
    const worker = async (node: JetStreamQueueService): Promise<void> => {
      for (let idle = 0; idle < 3; ) {
        const got: Delivery[] = await node.receive('shared', { max: 7 }, 300);
        if (got.length === 0) {
          idle++;
          continue;
        }
        await node.ack('shared', got.map((d) => d.receipt));
        acked.push(...got.map((d) => d.id));
      }
    };
    await Promise.all([worker(a), worker(b), worker(a), worker(b)]);
    expect(acked).toHaveLength(total);
    expect(new Set(acked)).toEqual(ids);
    expect((await b.describe('shared')).depth).toBe(0);
  });

  it('deletes a queue', async () => {
    await a.enqueue('gone', [msg('x')]);
    await b.deleteQueue('gone');
    await expect(a.describe('gone')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    await expect(a.deleteQueue('gone')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    await a.enqueue('gone', [msg('y')]); // a had it cached: it notices and creates it again
    await b.deleteQueue('gone');
    expect(await a.enqueue('gone', [msg('z')])).toEqual(['1']);
    expect((await b.describe('gone')).depth).toBe(1);
  });
});
