import type { KV, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import { CoordinatorNotAvailableError, EngineClosedError } from '../errors.js';
import type { GroupCoordinator } from '../groups/index.js';
import type {
  CommittedOffset,
  GroupDescription,
  JoinGroupRequest,
  MemberAssignment,
  MemberFence,
  OffsetCommit,
} from '../types.js';
import { CoordinatorLease } from './coordinator-lease.js';
import { RemoteGroupCalls, serveGroupCalls, type GroupCalls } from './group-rpc.js';
import { TakeoverGate } from './takeover-gate.js';

export interface DistributedGroupsOptions {
  readonly nc: NatsConnection;
  /** The lease bucket (`max_age` = `leaseMs`). */
  readonly leaseKv: KV;
  readonly nodeId: string;
  readonly leaseMs: number;
  /**
   * How long a coordinator that took over from another waits before serving joins and heartbeats
   * (see {@link TakeoverGate}); 0 serves at once.
   */
  readonly takeoverDelayMs: number;
  /** @defaultValue Date.now */
  readonly now?: () => number;
  /** Told each time this node, having taken over from an earlier coordinator, serves joins. */
  readonly onTakeover?: (durationMs: number) => void;
  /** Where the coordinator serves group calls. */
  readonly subject: string;
  readonly requestTimeoutMs: number;
  /** Group calls this node may have waiting for a remote coordinator. */
  readonly maxInFlightCalls: number;
  readonly logger: Logger;
  /** A fresh coordinator over the shared offset store, opened when this node wins the lease. */
  readonly newCoordinator: () => GroupCoordinator;
}

/**
 * Consumer groups for several Brook nodes on one JetStream prefix: one node, elected with a
 * {@link CoordinatorLease}, runs the {@link GroupCoordinator} and serves every group call; the
 * others forward theirs to it ({@link RemoteGroupCalls}). Membership lives only on the leader, so
 * a failover makes members rejoin; committed offsets live in KV and survive it.
 */
export class DistributedGroups implements GroupCalls {
  private readonly remote: RemoteGroupCalls;
  private readonly lease: CoordinatorLease;
  private coordinator: GroupCoordinator | null = null;
  /** The coordinator as callers see it: gated for `takeoverDelayMs` after a takeover. */
  private face: GroupCalls | null = null;
  private takeoverTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private serving: Subscription | null = null;
  /** Bumped on every election and demotion, so a slow coordinator open cannot outlive its term. */
  private term = 0;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: DistributedGroupsOptions) {
    this.now = options.now ?? Date.now;
    this.remote = new RemoteGroupCalls(options.nc, options.subject, options.requestTimeoutMs, options.maxInFlightCalls);
    this.lease = new CoordinatorLease(
      { kv: options.leaseKv, nodeId: options.nodeId, leaseMs: options.leaseMs, logger: options.logger },
      { elected: (firstEver) => this.onElected(firstEver), demoted: () => this.onDemoted() },
    );
  }

  /** Whether this node serves the groups now (for tests and metrics), joins possibly still gated. */
  get isCoordinator(): boolean {
    return this.coordinator !== null;
  }

  /** Joins the election; when this node wins at once, resolves after it serves. */
  async open(): Promise<void> {
    await this.lease.start();
    await this.starting;
  }

  /** Steps down (releasing the lease to a successor) and waits for calls in flight. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.takeoverTimer);
    await this.lease.stop();
    await this.starting;
    await this.stopping;
  }

  join(request: JoinGroupRequest): Promise<MemberAssignment> {
    return this.run((c) => c.join(request));
  }
  heartbeat(group: string, memberId: string): Promise<MemberAssignment> {
    return this.run((c) => c.heartbeat(group, memberId));
  }
  leave(group: string, memberId: string): Promise<void> {
    return this.run((c) => c.leave(group, memberId));
  }
  commit(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void> {
    return this.run((c) => c.commit(group, commits, fence));
  }
  fetch(group: string, topic?: string): Promise<CommittedOffset[]> {
    return this.run((c) => c.fetch(group, topic));
  }
  describe(group: string): Promise<GroupDescription> {
    return this.run((c) => c.describe(group));
  }
  list(): Promise<string[]> {
    return this.run((c) => c.list());
  }

  /** The catalog changed (on any node): only the serving coordinator tracks partitions. */
  async topicsChanged(): Promise<void> {
    await this.coordinator?.topicsChanged();
  }

  async topicDeleted(topic: string): Promise<void> {
    await this.coordinator?.topicDeleted(topic);
  }

  private async run<T>(call: (calls: GroupCalls) => Promise<T>): Promise<T> {
    if (this.closed) throw new EngineClosedError();
    const local = this.face;
    try {
      return await call(local ?? this.remote);
    } catch (err) {
      // The local coordinator closed under the call because this node stepped down.
      if (local !== null && err instanceof EngineClosedError && !this.closed) {
        throw new CoordinatorNotAvailableError('the group coordinator is failing over; retry shortly', { cause: err });
      }
      throw err;
    }
  }

  private onElected(firstEver: boolean): void {
    const term = ++this.term;
    const electedAt = this.now();
    // The first coordinator ever under this prefix has no predecessor whose members could still
    // be consuming; every later one may (a crash, or a clean handover: members outlive both).
    const delayMs = firstEver ? 0 : this.options.takeoverDelayMs;
    const coordinator = this.options.newCoordinator();
    this.starting = coordinator
      .open()
      .then(() => {
        if (term !== this.term || this.closed) {
          void coordinator.close();
          return;
        }
        const gate = new TakeoverGate(coordinator, electedAt + delayMs, this.now, () => {
          if (!firstEver) this.tookOver(term, electedAt);
        });
        this.coordinator = coordinator;
        this.face = gate;
        this.serving = serveGroupCalls(this.options.nc, this.options.subject, gate, this.options.logger);
        this.checkGate(term, gate);
      })
      .catch((err: unknown) => {
        // Holding the lease without serving would stall every group: hand it on.
        this.options.logger.error({ err }, 'could not start the group coordinator; releasing the lease');
        void coordinator.close();
        if (term === this.term && !this.closed) void this.lease.resign('the coordinator could not start');
      })
      .finally(() => {
        if (term === this.term) this.starting = null;
      });
  }

  /** Opens the gate when its delay has passed (a call may open it first, e.g. on a test clock). */
  private checkGate(term: number, gate: TakeoverGate): void {
    const left = gate.check();
    if (left === 0 || term !== this.term || this.closed) return;
    this.takeoverTimer = setTimeout(() => this.checkGate(term, gate), left);
    this.takeoverTimer.unref();
  }

  /** Logs and reports a takeover once its joins are served. */
  private tookOver(term: number, electedAt: number): void {
    if (term !== this.term || this.closed) return;
    const durationMs = this.now() - electedAt;
    this.options.logger.info(
      { durationMs, takeoverDelayMs: this.options.takeoverDelayMs },
      'took over as the consumer-group coordinator: serving joins and heartbeats',
    );
    this.options.onTakeover?.(durationMs);
  }

  private onDemoted(): void {
    this.term++;
    clearTimeout(this.takeoverTimer);
    this.face = null;
    this.serving?.unsubscribe();
    this.serving = null;
    const coordinator = this.coordinator;
    this.coordinator = null;
    if (coordinator !== null) {
      const previous = this.stopping;
      this.stopping = Promise.all([previous, coordinator.close()]).then(() => undefined);
    }
  }
}
