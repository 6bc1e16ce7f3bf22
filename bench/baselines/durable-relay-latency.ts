import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { FailureLog, type LatencySystem } from '../lib/latency-system.js';
import { ChildServer, freePort, isPortOpen } from '../lib/processes.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';

const SERVER = join(fileURLToPath(new URL('.', import.meta.url)), 'durable-relay-server.ts');

/**
 * The floor under Brook's end-to-end latency on this machine: a minimal durable relay in Node.js
 * (durable-relay-server.ts: O_DSYNC group write, then ack and push, nothing else) driven over
 * WebSocket by the same harness. What Brook adds on top of it is the price of its protocol and
 * guarantees; what the floor itself costs is the platform's (two event loops, the thread pool's
 * hop for the write, loopback sockets, the disk).
 */
export class DurableRelayLatency implements LatencySystem {
  readonly name = 'node-floor' as const;
  readonly label = 'Node.js durable relay (floor)';
  readonly durability = 'A record is pushed once the group-committed O_DSYNC write that holds it has returned, as Brook does; no offsets, idempotence, flow control or recovery.';
  readonly how = 'one WebSocket message per record, 4-byte ack per message, one push per group';
  private readonly failureLog = new FailureLog();

  private server: ChildServer | null = null;
  private workDir: string | null = null;
  private producer: WebSocket | null = null;
  private consumer: WebSocket | null = null;
  /** Acks come back in send order: one resolver per unacknowledged send. */
  private readonly unacked: (() => void)[] = [];
  private ackHead = 0;

  constructor(
    private readonly root: string,
    /** Every value's size: a push holds a group's values back to back. */
    private readonly recordBytes: number,
  ) {}

  get failures(): readonly string[] {
    return this.failureLog.first;
  }

  async start(): Promise<void> {
    const port = await freePort();
    this.workDir = makeTempDir(this.root, 'node-floor');
    const { server } = await ChildServer.start({
      name: 'durable relay',
      command: process.execPath,
      args: ['--import', 'tsx', SERVER, String(port), join(this.workDir, 'log')],
      ready: () => isPortOpen(port),
    });
    this.server = server;
    this.producer = await open(`ws://127.0.0.1:${port}/produce`);
    this.consumer = await open(`ws://127.0.0.1:${port}/consume`);
    for (const ws of [this.producer, this.consumer]) ws.on('error', (err) => this.failureLog.push(err));
    this.producer.on('message', () => {
      const resolve = this.unacked[this.ackHead];
      if (resolve === undefined) return this.failureLog.push(new Error('an ack for nothing sent'));
      this.ackHead++;
      if (this.ackHead >= 4096) {
        this.unacked.splice(0, this.ackHead);
        this.ackHead = 0;
      }
      resolve();
    });
  }

  async subscribe(onValue: (value: Uint8Array) => void): Promise<void> {
    const recordBytes = this.recordBytes;
    const consumer = this.consumer;
    if (consumer === null) throw new Error('node-floor is not started');
    consumer.on('message', (data: Buffer) => {
      for (let at = 0; at + recordBytes <= data.length; at += recordBytes) onValue(data.subarray(at, at + recordBytes));
    });
    return Promise.resolve();
  }

  send(value: Buffer): Promise<unknown> {
    const producer = this.producer;
    if (producer === null) throw new Error('node-floor is not started');
    return new Promise<void>((resolve) => {
      this.unacked.push(resolve);
      producer.send(value);
    });
  }

  async stop(): Promise<void> {
    this.producer?.terminate();
    this.consumer?.terminate();
    this.producer = this.consumer = null;
    try {
      await this.server?.stop();
    } finally {
      this.server = null;
      if (this.workDir !== null) await removeTempDir(this.workDir);
      this.workDir = null;
    }
  }
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
