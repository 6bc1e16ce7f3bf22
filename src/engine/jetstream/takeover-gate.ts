import { CoordinatorNotAvailableError } from '../errors.js';
import type {
  CommittedOffset,
  GroupDescription,
  JoinGroupRequest,
  MemberAssignment,
  MemberFence,
  OffsetCommit,
} from '../types.js';
import type { GroupCalls } from './group-rpc.js';

/**
 * A newly elected coordinator's face for its first `delayMs`: joins and heartbeats are refused
 * with the retriable `COORDINATOR_NOT_AVAILABLE` until then, everything else passes through.
 *
 * Why: the new coordinator starts with no members, so whoever joins first gets every partition,
 * while members of the previous coordinator may still be consuming theirs — each stops only
 * when its next heartbeat is refused or its session runs out. No member of the previous term can
 * have heard from a coordinator since this node won the lease, so after one session timeout
 * every one of them has stopped (the server's session guard, src/broker/group-member-session.ts)
 * and handing out partitions can no longer give one partition to two members
 * (docs/jetstream-engine.md, "Failover"). Commits stay open: fenced ones name a member this
 * coordinator does not know and are refused anyway; unfenced ones are plain writes.
 */
export class TakeoverGate implements GroupCalls {
  private opened = false;

  constructor(
    private readonly inner: GroupCalls,
    /** When joins and heartbeats are served, on `now`'s clock. */
    private readonly servesAt: number,
    private readonly now: () => number,
    /** Called once, when the gate is first found open (by {@link check} or a call). */
    private readonly onOpen: () => void,
  ) {}

  /** Milliseconds until joins and heartbeats are served; 0 once they are (and then reports the opening). */
  check(): number {
    const left = Math.max(0, this.servesAt - this.now());
    if (left === 0 && !this.opened) {
      this.opened = true;
      this.onOpen();
    }
    return left;
  }

  join(request: JoinGroupRequest): Promise<MemberAssignment> {
    return this.gated(() => this.inner.join(request));
  }
  heartbeat(group: string, memberId: string): Promise<MemberAssignment> {
    return this.gated(() => this.inner.heartbeat(group, memberId));
  }
  leave(group: string, memberId: string): Promise<void> {
    return this.inner.leave(group, memberId);
  }
  commit(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void> {
    return this.inner.commit(group, commits, fence);
  }
  fetch(group: string, topic?: string): Promise<CommittedOffset[]> {
    return this.inner.fetch(group, topic);
  }
  describe(group: string): Promise<GroupDescription> {
    return this.inner.describe(group);
  }
  list(): Promise<string[]> {
    return this.inner.list();
  }

  private gated<T>(call: () => Promise<T>): Promise<T> {
    const left = this.check();
    if (left > 0) {
      return Promise.reject(
        new CoordinatorNotAvailableError(
          `the group coordinator just took over and waits ${left} ms more for members of its predecessor to stop; retry shortly`,
        ),
      );
    }
    return call();
  }
}
