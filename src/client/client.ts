/**
 * The Brook client: one WebSocket connection (kept alive across drops) shared by any number of
 * producers and consumers. See docs/client.md.
 */
import { Connection, type ClientEvents, type ConnectionState } from './connection.js';
import { Consumer } from './consumer.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from './defaults.js';
import { ClientClosedError } from './errors.js';
import type { ClientOptions, ConsumerOptions, EnqueueJob, JobHandler, ProducerOptions, WorkerOptions } from './options.js';
import { Worker } from './worker.js';
import { InvalidArgumentError } from './errors.js';
import type { WireEnqueue } from './wire.js';
import { Producer } from './producer.js';
import type { ServerLimits } from './wire.js';

/**
 * A connection to a Brook server.
 *
 * @example
 * // Browsers and Node 22+ have a global WebSocket; on Node 20 pass the `ws` package.
 * const client = new BrookClient({ url: 'http://127.0.0.1:7420', WebSocket: (await import('ws')).default });
 * await client.connect();
 * const producer = client.producer({ topic: 'orders' });
 * await producer.send({ key: 'u1', value: { item: 'book' } });
 * for await (const record of client.consumer({ topic: 'orders', group: 'billing' })) console.log(record.value);
 * await client.close();
 */
export class BrookClient {
  private readonly conn: Connection;
  private readonly producers = new Set<{ close(): Promise<void> }>();
  private readonly consumers = new Set<{ close(): Promise<void> }>();
  private readonly workers = new Set<{ stop(): Promise<void> }>();
  private subs = 0;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: ClientOptions) {
    this.conn = new Connection(options);
  }

  /**
   * Connects (if not yet connected) and resolves at the server's `welcome`. Optional: producers
   * and consumers connect on first use. Rejects only when the client is closed or gives up
   * (a fatal close code, or `reconnect.maxAttempts` exhausted).
   */
  connect(): Promise<void> {
    return this.conn.ready();
  }

  get state(): ConnectionState {
    return this.conn.state;
  }

  /** The server's bounds from its last `welcome`; null before the first. */
  get limits(): ServerLimits | null {
    return this.conn.limits;
  }

  /** The server's session id of the current connection. */
  get session(): string | null {
    return this.conn.session;
  }

  /** Listens to connection events; returns the function that removes the listener. */
  on<K extends keyof ClientEvents>(event: K, listener: (payload: ClientEvents[K]) => void): () => void {
    return this.conn.events.on(event, listener);
  }

  /** A producer for one topic. Throws INVALID_ARGUMENT for bad options. */
  producer<T = unknown>(options: ProducerOptions<T>): Producer<T> {
    this.assertOpen();
    const producer = new Producer<T>(this.conn, options, (p) => this.producers.delete(p));
    this.producers.add(producer);
    return producer;
  }

  /**
   * A consumer of one partition (`partition`, default 0), of a group's share of a topic
   * (`group`), or of one partition at a group's offsets (`group` + `partition`). Throws
   * INVALID_ARGUMENT for bad options; server-side errors (TOPIC_NOT_FOUND, …) surface from the
   * iterator.
   */
  consumer<T = unknown>(options: ConsumerOptions<T>): Consumer<T> {
    this.assertOpen();
    const consumer = new Consumer<T>(
      this.conn,
      options,
      () => `s${++this.subs}`,
      (c) => this.consumers.delete(c),
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Enqueues jobs on a work queue (created with the defaults if new); resolves to their ids once
   * the server has them on disk.
   *
   * @example
   * const [id] = await client.enqueue('mail', [{ value: { to: 'a@b.c' }, delayMs: 5_000 }]);
   */
  async enqueue<T = unknown>(queue: string, jobs: readonly EnqueueJob<T>[]): Promise<string[]> {
    this.assertOpen();
    if (jobs.length === 0) throw new InvalidArgumentError('enqueue needs at least one job');
    const messages: WireEnqueue[] = jobs.map((j) => {
      const m: { -readonly [K in keyof WireEnqueue]: WireEnqueue[K] } = { value: j.value };
      if (j.delayMs !== undefined) m.delay_ms = j.delayMs;
      if (j.deadline !== undefined) m.deadline = j.deadline;
      if (j.priority !== undefined) m.priority = j.priority;
      if (j.dedupId !== undefined) m.dedup_id = j.dedupId;
      if (j.key !== undefined) m.key = j.key;
      if (j.ttlMs !== undefined) m.ttl_ms = j.ttlMs;
      return m;
    });
    const reply = await this.conn.request({ type: 'enqueue', queue, messages }, 'enqueued');
    return [...reply.ids];
  }

  /**
   * A pool of `concurrency` workers on `queue`: each pushed job runs `handler`; resolving acks it,
   * throwing releases it for a retry with backoff. Leases of long jobs are extended; `stop()`
   * finishes running jobs first. A throwing handler fails its job, never the pool.
   *
   * @example
   * const worker = client.worker<{ to: string }>('mail', async (job) => send(job.value), { concurrency: 8 });
   * // later
   * await worker.stop();
   */
  worker<T = unknown>(queue: string, handler: JobHandler<T>, options: WorkerOptions<T> = {}): Worker<T> {
    this.assertOpen();
    const worker = new Worker<T>(this.conn, queue, handler, options, `q${++this.subs}`, (w) => this.workers.delete(w));
    this.workers.add(worker);
    return worker;
  }

  /**
   * Flushes producers and closes consumers (committing and leaving groups) for up to
   * `closeTimeoutMs`, then closes the connection; whatever is still pending fails with
   * CLIENT_CLOSED. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const graceful = Promise.allSettled([
      ...[...this.producers, ...this.consumers].map((x) => x.close()),
      ...[...this.workers].map((w) => w.stop()),
    ]);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    });
    try {
      await Promise.race([graceful, timeout]);
    } finally {
      clearTimeout(timer);
      this.conn.close();
    }
  }

  private assertOpen(): void {
    if (this.closing !== null || this.conn.state === 'closed') throw new ClientClosedError();
  }
}
