import { InvalidArgumentError } from '../errors.js';
import type { AssignmentStrategy, GroupMemberDescription, MemberAssignment, TopicPartition } from '../types.js';
import { assignorFor, compareStrings, type TopicAssignment } from './assignors/index.js';
import { DEFAULT_ASSIGNMENT_STRATEGY } from './coordinator-options.js';

/** What a member declares when it joins. */
export interface MemberSpec {
  readonly clientId: string;
  /** Sorted, without duplicates. */
  readonly topics: readonly string[];
  readonly sessionTimeoutMs: number;
  readonly strategy: AssignmentStrategy | undefined;
}

interface Member {
  readonly id: string;
  clientId: string;
  topics: readonly string[];
  topicSet: ReadonlySet<string>;
  sessionTimeoutMs: number;
  lastHeartbeatAt: number;
}

/**
 * Membership and partition ownership of one consumer group. Synchronous on purpose: every
 * transition completes before another starts, so no interleaving can break the invariants.
 *
 * Every partition has a *target* owner (what the assignor wants now) and a current *owner*:
 *
 *   owner === target      the owner has it and sees it in its assignment
 *   owner !== target      revocation pending: the owner no longer sees it but still owns it (and
 *                         may commit it) until it heartbeats, rejoins, leaves or expires; only
 *                         then does the target owner get it
 *   owner === undefined   nobody to wait for: it goes to the target owner at once
 *
 * One owner per partition means two members never own a partition at once.
 */
export class ConsumerGroup {
  private generationValue = 0;
  private strategyValue: AssignmentStrategy = DEFAULT_ASSIGNMENT_STRATEGY;
  private readonly members = new Map<string, Member>();
  /** Partition counts of the subscribed topics (0 for topics that do not exist yet). */
  private readonly partitionCounts = new Map<string, number>();
  private target: TopicAssignment = new Map();
  /** Per topic, the owner of each partition; topics nobody owns anything of are left out. */
  private readonly owners = new Map<string, Array<string | undefined>>();
  private pendingRevocations = 0;
  /** Every member's visible assignment, built in one pass when first asked for after a change. */
  private views: Map<string, TopicPartition[]> | undefined;
  /** No member expires before this; heartbeats only push deadlines later, so it stays a lower bound. */
  private nextExpiryAt = Number.POSITIVE_INFINITY;

  constructor(
    readonly name: string,
    private readonly maxMembers: number,
  ) {}

  get generation(): number {
    return this.generationValue;
  }

  get strategy(): AssignmentStrategy {
    return this.strategyValue;
  }

  get size(): number {
    return this.members.size;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  /** Topics any member subscribes to. */
  subscribedTopics(): string[] {
    return [...this.partitionCounts.keys()];
  }

  /**
   * Adds a member, or updates one rejoining with its id; returns the member's id. `counts` holds
   * the partition count of each of the member's topics. Throws before changing anything.
   */
  join(memberId: string | undefined, spec: MemberSpec, counts: ReadonlyMap<string, number>, now: number, newId: () => string): string {
    const existing = memberId === undefined ? undefined : this.members.get(memberId);
    if (spec.strategy !== undefined && this.members.size > 0 && spec.strategy !== this.strategyValue) {
      throw new InvalidArgumentError(
        `group "${this.name}" uses the ${this.strategyValue} strategy; a member asked for ${spec.strategy}`,
      );
    }
    if (!existing && this.members.size >= this.maxMembers) {
      throw new InvalidArgumentError(`group "${this.name}" already has the maximum of ${this.maxMembers} members`);
    }
    if (this.members.size === 0) this.strategyValue = spec.strategy ?? DEFAULT_ASSIGNMENT_STRATEGY;
    let changed = false;
    for (const [topic, count] of counts) {
      if (this.partitionCounts.get(topic) === count) continue;
      this.partitionCounts.set(topic, count);
      changed = true;
    }
    let id: string;
    if (existing) {
      id = existing.id;
      // A rejoin is a request made after any earlier change, so it acknowledges revocations
      // exactly as a heartbeat does.
      this.release(id);
      existing.clientId = spec.clientId;
      existing.sessionTimeoutMs = spec.sessionTimeoutMs;
      existing.lastHeartbeatAt = now;
      if (!sameTopics(existing.topics, spec.topics)) {
        existing.topics = spec.topics;
        existing.topicSet = new Set(spec.topics);
        changed = true;
      }
    } else {
      id = newId();
      this.members.set(id, {
        id,
        clientId: spec.clientId,
        topics: spec.topics,
        topicSet: new Set(spec.topics),
        sessionTimeoutMs: spec.sessionTimeoutMs,
        lastHeartbeatAt: now,
      });
      changed = true;
    }
    this.nextExpiryAt = Math.min(this.nextExpiryAt, now + spec.sessionTimeoutMs);
    if (changed) this.rebalance();
    return id;
  }

  /** Records liveness and acknowledges pending revocations; false for an unknown member. */
  heartbeat(memberId: string, now: number): boolean {
    const member = this.members.get(memberId);
    if (!member) return false;
    member.lastHeartbeatAt = now;
    this.release(memberId);
    return true;
  }

  /** False for an unknown member. */
  leave(memberId: string): boolean {
    if (!this.members.has(memberId)) return false;
    this.remove(memberId);
    this.rebalance();
    return true;
  }

  /** Removes members whose last heartbeat is older than their session timeout; returns how many. */
  expire(now: number): number {
    if (now <= this.nextExpiryAt) return 0;
    let expired = 0;
    let next = Number.POSITIVE_INFINITY;
    for (const member of [...this.members.values()]) {
      const deadline = member.lastHeartbeatAt + member.sessionTimeoutMs;
      if (now > deadline) {
        this.remove(member.id);
        expired++;
      } else {
        next = Math.min(next, deadline);
      }
    }
    this.nextExpiryAt = next;
    if (expired > 0) this.rebalance();
    return expired;
  }

  /** Applies fresh partition counts of subscribed topics; rebalances if any changed. */
  updatePartitionCounts(counts: ReadonlyMap<string, number>): void {
    let changed = false;
    for (const [topic, current] of this.partitionCounts) {
      const count = counts.get(topic);
      if (count === undefined || count === current) continue;
      this.partitionCounts.set(topic, count);
      changed = true;
    }
    if (changed) this.rebalance();
  }

  /** The topic is gone: its partitions are dropped at once, as there is nothing left to consume. */
  topicDeleted(topic: string): void {
    const owned = this.owners.delete(topic);
    const count = this.partitionCounts.get(topic);
    if (count !== undefined) this.partitionCounts.set(topic, 0);
    if (owned || (count ?? 0) > 0) this.rebalance();
  }

  /** Whether the member owns the partition, including while its revocation is pending. */
  owns(memberId: string, topic: string, partition: number): boolean {
    return this.owners.get(topic)?.[partition] === memberId;
  }

  view(memberId: string): MemberAssignment {
    const member = this.members.get(memberId);
    if (!member) throw new Error(`consumer group ${this.name}: no member ${memberId}`);
    return {
      group: this.name,
      memberId,
      generation: this.generationValue,
      assignment: this.assignmentOf(memberId),
      heartbeatIntervalMs: Math.round(member.sessionTimeoutMs / 3),
      sessionTimeoutMs: member.sessionTimeoutMs,
    };
  }

  /** Members sorted by id. */
  describeMembers(): GroupMemberDescription[] {
    return [...this.members.values()]
      .sort((a, b) => compareStrings(a.id, b.id))
      .map((m) => ({
        memberId: m.id,
        clientId: m.clientId,
        topics: m.topics,
        assignment: this.assignmentOf(m.id),
        lastHeartbeatAt: m.lastHeartbeatAt,
      }));
  }

  private remove(memberId: string): void {
    this.members.delete(memberId);
    for (const owners of this.owners.values()) {
      for (let p = 0; p < owners.length; p++) if (owners[p] === memberId) owners[p] = undefined;
    }
  }

  /** The member has acknowledged: partitions it is losing go to their target owners. */
  private release(memberId: string): void {
    if (this.pendingRevocations === 0) return;
    let changed = false;
    for (const [topic, owners] of this.owners) {
      const targets = this.target.get(topic);
      for (let p = 0; p < owners.length; p++) {
        if (owners[p] !== memberId || targets?.[p] === memberId) continue;
        owners[p] = targets?.[p];
        changed = true;
      }
    }
    if (changed) this.settle();
  }

  private rebalance(): void {
    this.generationValue++;
    const subscribed = new Set<string>();
    for (const member of this.members.values()) for (const topic of member.topics) subscribed.add(topic);
    for (const topic of [...this.partitionCounts.keys()]) if (!subscribed.has(topic)) this.partitionCounts.delete(topic);
    this.target = assignorFor(this.strategyValue)({
      members: [...this.members.values()].map((m) => ({ id: m.id, topics: m.topicSet })),
      partitions: this.partitionCounts,
      previous: this.target,
    });
    this.settle();
  }

  /** Hands unowned partitions to their target owners and recounts pending revocations. */
  private settle(): void {
    for (const [topic, targets] of this.target) {
      let owners = this.owners.get(topic);
      if (!owners) this.owners.set(topic, (owners = []));
      for (let p = 0; p < targets.length; p++) owners[p] ??= targets[p];
    }
    let pending = 0;
    for (const [topic, owners] of [...this.owners]) {
      const targets = this.target.get(topic);
      let owned = false;
      for (let p = 0; p < owners.length; p++) {
        const owner = owners[p];
        if (owner === undefined) continue;
        owned = true;
        if (targets?.[p] !== owner) pending++;
      }
      if (!owned) this.owners.delete(topic);
    }
    this.pendingRevocations = pending;
    this.views = undefined;
  }

  /** Partitions the member owns and is not being asked to give up. */
  private assignmentOf(memberId: string): readonly TopicPartition[] {
    if (!this.views) {
      const views = new Map<string, TopicPartition[]>();
      for (const [topic, targets] of this.target) {
        const owners = this.owners.get(topic);
        targets.forEach((id, partition) => {
          if (owners?.[partition] !== id) return;
          let list = views.get(id);
          if (!list) views.set(id, (list = []));
          list.push({ topic, partition });
        });
      }
      this.views = views;
    }
    return this.views.get(memberId) ?? [];
  }
}

/** Both sorted and without duplicates. */
function sameTopics(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((topic, i) => topic === b[i]);
}
