import type { Logger } from 'pino';
import {
  UnknownMemberError,
  type Engine,
  type JoinGroupRequest,
  type MemberAssignment,
  type MemberFence,
  type OffsetCommit,
  type TopicPartition,
} from '../engine/index.js';
import { StreamError } from './errors.js';
import type { CommitFrame, Credits, JoinFrame, RequestId, ServerFrame } from './frames.js';
import { committedPositions } from './positions.js';
import type { OutboundFrame } from './record-frames.js';
import type { Subscription } from './subscription.js';

/** What a group membership needs from the session it lives in. */
export interface GroupHost {
  readonly engine: Engine;
  readonly logger: Logger;
  /** Creates and registers (does not start) a subscription under `sub`. */
  openSubscription(sub: string, topic: string, partition: number, offset: number, credits: Credits, stored: boolean): Subscription;
  /** Stops and unregisters a subscription. */
  closeSubscription(sub: Subscription): void;
  send(frame: ServerFrame): void;
  /** The membership is over (left, expired, failed to join): the session forgets this object. */
  forget(group: GroupMemberSession): void;
}

/** A reply, and the subscriptions to start once it has been sent. */
export interface GroupAnswer {
  readonly frame: ServerFrame | OutboundFrame;
  readonly started: readonly Subscription[];
}

/** The subscription name a group partition is pushed under. */
export function groupSubName(group: string, topic: string, partition: number): string {
  return `group:${group}:${topic}:${partition}`;
}

const NO_CREDIT: Credits = { records: 0 };

/** The offsets of a commit frame as the engine takes them. */
export function offsetCommits(frame: CommitFrame): OffsetCommit[] {
  return frame.offsets.map((o) =>
    o.metadata === undefined
      ? { topic: o.topic, partition: o.partition, offset: o.offset }
      : { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata },
  );
}

/**
 * One connection's membership of one consumer group. The server pushes the partitions assigned
 * to the member from the group's committed offsets and stops pushing a partition as soon as a
 * heartbeat (or rejoin) shows it revoked; that heartbeat has released it to its next owner in
 * the engine, so the client commits before every heartbeat (docs/protocol.md#consumer-groups).
 *
 * Operations of one group run one at a time in arrival order, so a commit sent before a
 * heartbeat is stored before that heartbeat releases anything. Commits are fenced by the
 * member's id: a member that lost a partition cannot move its offset any more.
 */
export class GroupMemberSession {
  private member: { readonly id: string; readonly generation: number } | undefined;
  /** Pushed partitions by `topic:partition`. */
  private readonly pushing = new Map<string, Subscription>();
  private credits: Credits = NO_CREDIT;
  /** The join asked for stored-batch pushes (`stored_batches`). */
  private stored = false;
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private expiry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly group: string,
    private readonly host: GroupHost,
  ) {}

  get memberId(): string | undefined {
    return this.member?.id;
  }

  /** Runs `op` after every earlier operation of this group has finished. */
  run<T>(op: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(op);
    this.tail = result.then(
      () => this.queued--,
      () => this.queued--,
    );
    return result;
  }

  /** Joins, or rejoins with the same member id (which acknowledges revocations like a heartbeat). */
  async join(id: RequestId, frame: JoinFrame): Promise<GroupAnswer> {
    const request: { -readonly [K in keyof JoinGroupRequest]: JoinGroupRequest[K] } = { group: this.group, topics: frame.topics };
    if (this.member) request.memberId = this.member.id;
    if (frame.client_id !== undefined) request.clientId = frame.client_id;
    if (frame.session_timeout_ms !== undefined) request.sessionTimeoutMs = frame.session_timeout_ms;
    if (frame.strategy !== undefined) request.strategy = frame.strategy;
    const started = Date.now();
    let assignment: MemberAssignment;
    try {
      assignment = await this.host.engine.joinGroup(request);
    } catch (err) {
      if (!this.member) this.host.forget(this);
      throw err;
    }
    if (this.closed) {
      // The connection closed while joining: the new member must not wait for its timeout.
      await this.host.engine.leaveGroup(this.group, assignment.memberId);
      throw new StreamError('INTERNAL', 'the connection closed while joining');
    }
    if (frame.credits !== undefined) this.credits = frame.credits;
    if (frame.stored_batches !== undefined) this.stored = frame.stored_batches;
    this.accepted(assignment, started);
    const { added } = this.revoke(assignment.assignment);
    return {
      frame: {
        type: 'joined',
        id,
        group: this.group,
        member_id: assignment.memberId,
        generation: assignment.generation,
        assignment: assignment.assignment,
        heartbeat_interval_ms: assignment.heartbeatIntervalMs,
        session_timeout_ms: assignment.sessionTimeoutMs,
      },
      started: await this.add(added),
    };
  }

  async heartbeat(id: RequestId): Promise<GroupAnswer> {
    const member = this.requireMember();
    const started = Date.now();
    let assignment: MemberAssignment;
    try {
      assignment = await this.host.engine.heartbeat(this.group, member.id);
    } catch (err) {
      if (err instanceof UnknownMemberError) this.end();
      throw err;
    }
    if (this.closed || this.member !== member) throw new StreamError('UNKNOWN_MEMBER', `membership of group "${this.group}" ended`);
    this.accepted(assignment, started);
    const { added, revoked } = this.revoke(assignment.assignment);
    return {
      frame: {
        type: 'assignment',
        id,
        group: this.group,
        generation: assignment.generation,
        assignment: assignment.assignment,
        revoked,
      },
      started: await this.add(added),
    };
  }

  /** Fenced by the member when joined; a connection that has not joined commits unfenced. */
  async commit(frame: CommitFrame): Promise<void> {
    const fence: MemberFence | undefined = this.member ? { memberId: this.member.id, generation: this.member.generation } : undefined;
    await this.host.engine.commitOffsets(this.group, offsetCommits(frame), fence);
  }

  /** Stops pushing and leaves the group; its partitions move at once. */
  async leave(): Promise<void> {
    const member = this.member;
    this.end();
    if (member) await this.host.engine.leaveGroup(this.group, member.id);
  }

  /** The connection closed: stop pushing now, leave once earlier operations (commits) are done. */
  close(): Promise<void> {
    this.closed = true;
    this.stopAll();
    clearTimeout(this.expiry);
    return this.run(() => this.leave()).catch((err: unknown) =>
      this.host.logger.warn({ err, group: this.group }, 'could not leave the group when the connection closed'),
    );
  }

  private requireMember(): { readonly id: string; readonly generation: number } {
    if (!this.member || this.closed) {
      throw new StreamError('UNKNOWN_MEMBER', `this connection is not a member of group "${this.group}"; join first`);
    }
    return this.member;
  }

  /**
   * Remembers the member and arms the session-timeout guard: if the client does not heartbeat
   * in time, the coordinator gives its partitions away, so pushing them must stop too. The
   * deadline counts from when the request was sent to the engine, never later than the engine's.
   */
  private accepted(assignment: MemberAssignment, startedAt: number): void {
    this.member = { id: assignment.memberId, generation: assignment.generation };
    clearTimeout(this.expiry);
    const left = Math.max(0, startedAt + assignment.sessionTimeoutMs - Date.now());
    this.expiry = setTimeout(() => this.expire(), left);
    this.expiry.unref();
  }

  private expire(): void {
    // A heartbeat or join under way decides for itself (it refreshes or ends the membership).
    if (this.queued > 0 || !this.member || this.closed) return;
    this.end();
    this.host.send({
      type: 'error',
      group: this.group,
      code: 'UNKNOWN_MEMBER',
      message: `no heartbeat within the session timeout: the membership of group "${this.group}" expired; join again`,
    });
  }

  /** Stops pushing everything and forgets the membership. */
  private end(): void {
    this.member = undefined;
    clearTimeout(this.expiry);
    this.stopAll();
    this.host.forget(this);
  }

  private stopAll(): void {
    for (const sub of this.pushing.values()) this.host.closeSubscription(sub);
    this.pushing.clear();
  }

  /**
   * Stops pushing partitions missing from `assignment`, at once (no await before this runs, so
   * nothing of a revoked partition is sent after the reply). Returns what is new and what went.
   */
  private revoke(assignment: readonly TopicPartition[]): { added: TopicPartition[]; revoked: TopicPartition[] } {
    const keep = new Set<string>();
    const added: TopicPartition[] = [];
    for (const tp of assignment) {
      const key = `${tp.topic}:${tp.partition}`;
      keep.add(key);
      if (!this.pushing.has(key)) added.push({ topic: tp.topic, partition: tp.partition });
    }
    const revoked: TopicPartition[] = [];
    for (const [key, sub] of this.pushing) {
      if (keep.has(key)) continue;
      this.host.closeSubscription(sub);
      this.pushing.delete(key);
      revoked.push({ topic: sub.topic, partition: sub.partition });
    }
    return { added, revoked };
  }

  /** Opens subscriptions for newly assigned partitions at the group's committed offsets. */
  private async add(added: readonly TopicPartition[]): Promise<Subscription[]> {
    if (added.length === 0) return [];
    const member = this.member;
    const positions = await committedPositions(this.host.engine, this.group, added);
    // A leave or expiry while the offsets were read: those partitions are no longer ours.
    if (this.closed || this.member !== member) return [];
    return added.map((tp, i) => {
      const sub = this.host.openSubscription(
        groupSubName(this.group, tp.topic, tp.partition),
        tp.topic,
        tp.partition,
        positions[i]!.offset,
        this.credits,
        this.stored,
      );
      this.pushing.set(`${tp.topic}:${tp.partition}`, sub);
      return sub;
    });
  }
}
