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

export interface DistributedGroupsOptions {
  readonly nc: NatsConnection;
  /** The lease bucket (`max_age` = `leaseMs`). */
  readonly leaseKv: KV;
  readonly nodeId: string;
  readonly leaseMs: number;
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
  private serving: Subscription | null = null;
  /** Bumped on every election and demotion, so a slow coordinator open cannot outlive its term. */
  private term = 0;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: DistributedGroupsOptions) {
    this.remote = new RemoteGroupCalls(options.nc, options.subject, options.requestTimeoutMs, options.maxInFlightCalls);
    this.lease = new CoordinatorLease(
      { kv: options.leaseKv, nodeId: options.nodeId, leaseMs: options.leaseMs, logger: options.logger },
      { elected: () => this.onElected(), demoted: () => this.onDemoted() },
    );
  }

  /** Whether this node serves the groups now (for tests and metrics). */
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
    const local = this.coordinator;
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

  private onElected(): void {
    const term = ++this.term;
    const coordinator = this.options.newCoordinator();
    this.starting = coordinator
      .open()
      .then(() => {
        if (term !== this.term || this.closed) {
          void coordinator.close();
          return;
        }
        this.coordinator = coordinator;
        this.serving = serveGroupCalls(this.options.nc, this.options.subject, coordinator, this.options.logger);
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

  private onDemoted(): void {
    this.term++;
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
