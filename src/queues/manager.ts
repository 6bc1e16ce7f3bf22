import pino, { type Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import { assertValidQueueName, DEFAULT_CARRY_FORWARD_AFTER, DEFAULT_COMPACT_INTERVAL_MS, resolveQueueConfig } from './config.js';
import { EngineQueueStorage } from './engine-storage.js';
import { QueueClosedError, QueueNotFoundError } from './errors.js';
import { Queue, type QueueObserver } from './queue.js';
import type { QueueService } from './service.js';
import type { QueueStorage } from './storage.js';
import type {
  DeadLetter,
  DeadLetterSelection,
  Delivery,
  EnqueueMessage,
  QueueConfig,
  QueueConfigInput,
  QueueStats,
  ReceiveOptions,
} from './types.js';

export interface QueueManagerOptions {
  /** Where queues live: internal topics of this engine (ignored when `storage` is given). */
  readonly engine?: Engine;
  /** A storage of its own (tests, other backends). @defaultValue EngineQueueStorage over `engine` */
  readonly storage?: QueueStorage;
  readonly logger?: Logger;
  /** Milliseconds since the epoch. Injectable so tests drive time. @defaultValue Date.now */
  readonly clock?: () => number;
  /** Uniform in [0, 1): backoff jitter and receipt nonces. @defaultValue Math.random */
  readonly random?: () => number;
  /** Run timers for delays, leases and deadlines; off, tests call `tick()`. @defaultValue true */
  readonly timers?: boolean;
  /** How often finished messages are truncated from the logs; 0 turns it off. @defaultValue 5_000 */
  readonly compactIntervalMs?: number;
  /** Enqueue to an unknown queue creates it with the defaults. @defaultValue true */
  readonly autoCreate?: boolean;
  readonly observer?: QueueObserver;
  /**
   * Compaction carries the oldest live messages forward once the journal holds more than
   * `max(carryForwardAfter, 4 × live messages)` records. @defaultValue 10_000
   */
  readonly carryForwardAfter?: number;
}

/**
 * Every work queue of one Brook server. Queues are durable: their state is rebuilt from the
 * engine at `open()`, and every acknowledged operation is on disk.
 *
 * @example
 * const queues = await QueueManager.open({ engine, logger });
 * const [id] = await queues.enqueue('emails', [{ value: Buffer.from('{"to":"a@b.c"}') }]);
 * const [job] = await queues.receive('emails', { max: 1, visibilityMs: 30_000 });
 * await queues.ack('emails', [job.receipt]);
 */
export class QueueManager implements QueueService {
  private readonly queues = new Map<string, Promise<Queue>>();
  private readonly storage: QueueStorage;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly timers: boolean;
  private readonly autoCreate: boolean;
  private readonly observer: QueueObserver | undefined;
  private readonly carryForwardAfter: number;
  private compactTimer: NodeJS.Timeout | null = null;
  private compacting: Promise<void> | null = null;
  private closed = false;

  private constructor(options: QueueManagerOptions) {
    if (!options.storage && !options.engine) throw new Error('QueueManager needs an engine or a storage');
    this.storage = options.storage ?? new EngineQueueStorage(options.engine!);
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'queues' });
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.timers = options.timers ?? true;
    this.autoCreate = options.autoCreate ?? true;
    this.observer = options.observer;
    this.carryForwardAfter = options.carryForwardAfter ?? DEFAULT_CARRY_FORWARD_AFTER;
  }

  /** Loads every configured queue and recovers its state from storage. */
  static async open(options: QueueManagerOptions): Promise<QueueManager> {
    const manager = new QueueManager(options);
    if (manager.storage instanceof EngineQueueStorage && manager.storage.durability !== 'fsync') {
      manager.logger.warn(
        { engine: options.engine?.kind, durability: manager.storage.durability },
        'this engine cannot fsync before acknowledging: queue operations are acknowledged once the engine has them, not on disk',
      );
    }
    const catalog = await manager.storage.loadCatalog();
    for (const [name, stored] of catalog) {
      const config = resolveQueueConfig(stored as QueueConfigInput);
      await manager.openQueue(name, config);
    }
    const interval = options.compactIntervalMs ?? DEFAULT_COMPACT_INTERVAL_MS;
    if (interval > 0) {
      manager.compactTimer = setInterval(() => {
        manager.compacting ??= manager.compact().finally(() => (manager.compacting = null));
      }, interval);
      manager.compactTimer.unref();
    }
    return manager;
  }

  private openQueue(name: string, config: QueueConfig): Promise<Queue> {
    const opening = (async () => {
      const logs = await this.storage.open(name);
      const queue = new Queue(
        {
          name,
          logs,
          logger: this.logger,
          clock: this.clock,
          random: this.random,
          timers: this.timers,
          carryForwardAfter: this.carryForwardAfter,
          ...(this.observer ? { observer: this.observer } : {}),
        },
        config,
      );
      await queue.recover();
      return queue;
    })();
    this.queues.set(name, opening);
    opening.catch(() => this.queues.delete(name));
    return opening;
  }

  private async queue(name: string): Promise<Queue> {
    if (this.closed) throw new QueueClosedError();
    const queue = this.queues.get(name);
    if (queue) return queue; // only valid names are ever in the map
    assertValidQueueName(name);
    throw new QueueNotFoundError(name);
  }

  /** Creates a queue, or changes the configuration of an existing one (fields not given keep their value). */
  async configure(name: string, input: QueueConfigInput = {}): Promise<QueueConfig> {
    if (this.closed) throw new QueueClosedError();
    assertValidQueueName(name);
    const existing = this.queues.get(name);
    if (existing) {
      const queue = await existing;
      const config = resolveQueueConfig(input, queue.currentConfig);
      await this.storage.saveConfig(name, config);
      queue.reconfigure(config);
      return config;
    }
    const config = resolveQueueConfig(input);
    const opening = this.openQueue(name, config);
    await this.storage.saveConfig(name, config);
    await opening;
    return config;
  }

  private async queueForEnqueue(name: string): Promise<Queue> {
    if (this.closed) throw new QueueClosedError();
    assertValidQueueName(name);
    const queue = this.queues.get(name);
    if (queue) return queue;
    if (!this.autoCreate) throw new QueueNotFoundError(name);
    await this.configure(name);
    return this.queue(name);
  }

  async enqueue(name: string, messages: readonly EnqueueMessage[]): Promise<string[]> {
    return (await this.queueForEnqueue(name)).enqueue(messages);
  }

  async receive(name: string, options?: ReceiveOptions, waitMs = 0, signal?: AbortSignal): Promise<Delivery[]> {
    return (await this.queue(name)).receive(options, waitMs, signal);
  }

  async ack(name: string, receipts: readonly string[]): Promise<void> {
    return (await this.queue(name)).ack(receipts);
  }

  async nack(name: string, receipts: readonly string[], delayMs?: number, error?: string): Promise<void> {
    return (await this.queue(name)).nack(receipts, delayMs, error);
  }

  async extend(name: string, receipts: readonly string[], visibilityMs?: number): Promise<void> {
    (await this.queue(name)).extend(receipts, visibilityMs);
  }

  async reject(name: string, receipts: readonly string[], error?: string): Promise<void> {
    return (await this.queue(name)).reject(receipts, error);
  }

  async describe(name: string): Promise<QueueStats> {
    return (await this.queue(name)).stats();
  }

  async list(): Promise<QueueStats[]> {
    const out: QueueStats[] = [];
    for (const name of [...this.queues.keys()].sort()) {
      try {
        out.push((await this.queues.get(name)!).stats());
      } catch {
        // a queue that failed to open was removed from the map by openQueue and logged there
      }
    }
    return out;
  }

  async deadLetters(name: string, limit = 100, after?: string): Promise<DeadLetter[]> {
    return (await this.queue(name)).listDeadLetters(limit, after);
  }

  async deadLetter(name: string, id: string): Promise<DeadLetter | undefined> {
    return (await this.queue(name)).getDeadLetter(id);
  }

  /** Enqueues the selected dead letters again; resolves to their new ids. */
  async redrive(name: string, selection: DeadLetterSelection): Promise<string[]> {
    return (await this.queue(name)).redrive(selection);
  }

  async deleteDeadLetters(name: string, selection: DeadLetterSelection): Promise<number> {
    return (await this.queue(name)).deleteDeadLetters(selection);
  }

  /** Deletes a queue with its messages and dead letters. */
  async deleteQueue(name: string): Promise<void> {
    const queue = await this.queue(name);
    queue.close();
    this.queues.delete(name);
    await this.storage.saveConfig(name, null);
    await this.storage.drop(name);
  }

  /**
   * Moves what is due now in every queue and waits for the resulting dead-letter writes (tests
   * with an injected clock call it instead of relying on timers).
   */
  async tick(): Promise<void> {
    for (const opening of this.queues.values()) {
      const queue = await opening;
      queue.advance();
      await queue.idle();
    }
  }

  /** Truncates finished messages from every queue's logs (also runs every `compactIntervalMs`). */
  async compact(): Promise<void> {
    for (const [name, opening] of this.queues) {
      try {
        await (await opening).compact();
      } catch (err) {
        this.logger.warn({ err, queue: name }, 'queue compaction failed; retried next interval');
      }
    }
  }

  /** Stops timers; everything acknowledged is already durable. Does not close the engine. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.compactTimer) clearInterval(this.compactTimer);
    await this.compacting;
    for (const opening of this.queues.values()) {
      try {
        (await opening).close();
      } catch {
        // failed to open: nothing to close
      }
    }
  }
}
