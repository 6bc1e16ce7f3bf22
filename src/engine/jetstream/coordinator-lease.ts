import type { KV } from 'nats';
import type { Logger } from 'pino';
import { JsErr, jsErrorCode } from './nats-errors.js';

/** What a {@link CoordinatorLease} tells its owner. */
export interface LeaseHandlers {
  /**
   * This node now holds the lease; start serving. `firstEver` is true when no node ever held it
   * under this prefix before (the lease key's first revision), so no predecessor can have members.
   */
  elected(firstEver: boolean): void;
  /** This node no longer holds the lease (or may not); stop serving at once. */
  demoted(): void;
}

export interface CoordinatorLeaseOptions {
  /** The lease bucket; its `max_age` must equal `leaseMs` so an unrenewed key expires. */
  readonly kv: KV;
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly logger: Logger;
  /** @defaultValue Date.now */
  readonly now?: () => number;
}

const KEY = 'leader';

/**
 * A leader lease on a JetStream KV key: the node that created the key holds it while it renews it
 * with compare-and-set every `leaseMs / 3`; JetStream expires the key `leaseMs` after the last
 * write, and only then can another node create it. The holder gives up serving when a renewal is
 * refused or when none has succeeded for `leaseMs / 2` since it was sent — before any successor
 * can win — so at most one node serves at a time (docs/jetstream-engine.md, Consumer groups).
 */
export class CoordinatorLease {
  private readonly kv: KV;
  private readonly nodeId: string;
  private readonly leaseMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private revision = 0;
  /** When the last successful write of the key was sent; meaningful while leading. */
  private renewedAt = 0;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | null = null;
  private stopped = false;

  constructor(
    options: CoordinatorLeaseOptions,
    private readonly handlers: LeaseHandlers,
  ) {
    this.kv = options.kv;
    this.nodeId = options.nodeId;
    this.leaseMs = options.leaseMs;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Tries to win the lease at once, then keeps trying (or renewing) in the background. */
  async start(): Promise<void> {
    await this.tick();
    this.schedule();
  }

  /** Stops renewing; a holder steps down and deletes the key so a successor wins at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.resign('stopping');
  }

  /** Steps down now and deletes the key, but stays in the election. */
  async resign(reason: string): Promise<void> {
    if (!this.leading) return;
    const revision = this.revision;
    this.demote(reason);
    try {
      await this.kv.delete(KEY, { previousSeq: revision });
    } catch (err) {
      // Someone else already holds it, or JetStream is away: the key expires on its own.
      this.logger.debug({ err }, 'could not release the coordinator lease');
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = null;
        this.schedule();
      });
    }, Math.max(1, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (this.leading && this.expiredLocally()) this.demote('no renewal succeeded within half the lease');
    const sentAt = this.now();
    const value = JSON.stringify({ node: this.nodeId, since: sentAt });
    try {
      if (this.leading) {
        this.revision = await this.kv.update(KEY, value, this.revision);
        this.renewedAt = sentAt;
      } else {
        this.revision = await this.kv.create(KEY, value);
        this.renewedAt = sentAt;
        if (this.stopped) return;
        this.leading = true;
        this.logger.info({ node: this.nodeId }, 'this node is now the consumer-group coordinator');
        // KV revisions are the bucket stream's sequences, which never restart: revision 1 is the
        // first lease ever written here, later ones follow some earlier holder.
        this.handlers.elected(this.revision === 1);
      }
    } catch (err) {
      if (jsErrorCode(err) === JsErr.WrongLastSequence) {
        // Another node holds the key (or took it over): never serve beside it.
        if (this.leading) this.demote('another node holds the lease');
        return;
      }
      if (this.leading && this.expiredLocally()) {
        this.demote('no renewal succeeded within half the lease');
        return;
      }
      this.logger.debug({ err }, 'coordinator lease request failed; retrying');
    }
  }

  private expiredLocally(): boolean {
    return this.now() - this.renewedAt > this.leaseMs / 2;
  }

  private demote(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.logger.warn({ node: this.nodeId, reason }, 'this node is no longer the consumer-group coordinator');
    this.handlers.demoted();
  }
}
