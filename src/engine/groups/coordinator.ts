import { randomUUID } from 'node:crypto';
import {
  EngineClosedError,
  InvalidArgumentError,
  NotPartitionOwnerError,
  PartitionNotFoundError,
  TopicNotFoundError,
  UnknownMemberError,
} from '../errors.js';
import type {
  CommittedOffset,
  GroupDescription,
  JoinGroupRequest,
  MemberAssignment,
  MemberFence,
  OffsetCommit,
} from '../types.js';
import { compareStrings } from './assignors/index.js';
import { ConsumerGroup } from './consumer-group.js';
import {
  DEFAULT_ASSIGNMENT_STRATEGY,
  DEFAULT_MAX_GROUPS,
  DEFAULT_MAX_MEMBERS_PER_GROUP,
  DEFAULT_SWEEP_INTERVAL_MS,
  type GroupCoordinatorOptions,
} from './coordinator-options.js';
import { GroupOffsets } from './group-offsets.js';
import type { GroupOffsetRecord, OffsetKey, OffsetStore } from './offset-store.js';
import { SerialQueue } from './serial-queue.js';
import { assertFence, assertId, assertOffsetCommit, parseJoinRequest } from './validate.js';

interface GroupEntry {
  readonly membership: ConsumerGroup;
  readonly offsets: GroupOffsets;
  /** Commits waiting for the store; the entry must outlive them. */
  inFlightCommits: number;
}

interface InFlightCommit {
  readonly done: Promise<unknown>;
  /** Topics deleted while the write was in flight: their offsets must not come back. */
  readonly deletedTopics: Set<string>;
}

/**
 * The engine-agnostic consumer-group coordinator: membership and assignment in memory, committed
 * offsets in memory and written through to the engine's {@link OffsetStore}.
 *
 * The protocol is incremental and broker-driven (the model of Kafka's KIP-848): a membership
 * change never stops the whole group. A partition whose target owner changes disappears from the
 * old owner's assignment at once and appears in the new owner's only after the old owner has
 * heartbeated since the change, left or expired; until then the old owner still owns it for
 * commits. Members are expected to commit what they have processed before each heartbeat and,
 * from its response on, to consume only the partitions it lists.
 *
 * Joins and topic notifications are serialised, because they await partition counts and must
 * apply them in the order the engine observed them; everything else is synchronous and atomic.
 *
 * @example
 * ```ts
 * const groups = new GroupCoordinator({ offsetStore, partitionCount: async (t) => describe(t).partitions.length });
 * await groups.open();
 * const me = await groups.join({ group: 'billing', topics: ['orders'] });
 * // ... consume me.assignment, commit, then every me.heartbeatIntervalMs:
 * const next = await groups.heartbeat('billing', me.memberId);
 * ```
 */
export class GroupCoordinator {
  private readonly store: OffsetStore;
  private readonly partitionCount: (topic: string) => Promise<number>;
  private readonly now: () => number;
  private readonly sweepIntervalMs: number;
  private readonly maxGroups: number;
  private readonly maxMembersPerGroup: number;
  private readonly groups = new Map<string, GroupEntry>();
  private readonly topology = new SerialQueue();
  /** Bounded by the callers' concurrency: one entry per commit awaiting the store. */
  private readonly inFlight = new Set<InFlightCommit>();
  private commitSequence = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private state: 'new' | 'open' | 'closed' = 'new';

  constructor(options: GroupCoordinatorOptions) {
    this.store = options.offsetStore;
    this.partitionCount = options.partitionCount;
    this.now = options.now ?? Date.now;
    this.sweepIntervalMs = positive('sweepIntervalMs', options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
    this.maxGroups = positive('maxGroups', options.maxGroups ?? DEFAULT_MAX_GROUPS);
    this.maxMembersPerGroup = positive('maxMembersPerGroup', options.maxMembersPerGroup ?? DEFAULT_MAX_MEMBERS_PER_GROUP);
  }

  /** Loads committed offsets and starts the expiry sweep. */
  async open(): Promise<void> {
    if (this.state !== 'new') throw new InvalidArgumentError('a group coordinator can be opened once');
    const records = await this.store.load();
    if (this.state !== 'new') throw new EngineClosedError();
    // Loaded groups count towards maxGroups but are never refused: they are already durable.
    for (const record of records) this.entry(record.group).offsets.apply([record], ++this.commitSequence);
    this.state = 'open';
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Stops the sweep and waits for joins and commits in flight. Idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.sweepTimer);
    await this.topology.idle();
    await Promise.allSettled([...this.inFlight].map((c) => c.done));
  }

  /**
   * Adds a member (or updates one rejoining with its `memberId`) and rebalances. A `memberId`
   * the group does not know (it expired, or the coordinator restarted) gets a fresh id.
   */
  async join(request: JoinGroupRequest): Promise<MemberAssignment> {
    this.assertOpen();
    const join = parseJoinRequest(request);
    return this.topology.run(async () => {
      this.assertOpen();
      const counts = await this.fetchPartitionCounts(join.topics);
      this.assertOpen();
      const existing = this.touch(join.group);
      if (!existing && this.groups.size >= this.maxGroups) throw tooManyGroups(this.maxGroups);
      const entry = existing ?? this.entry(join.group);
      try {
        const memberId = entry.membership.join(join.memberId, join, counts, this.now(), randomUUID);
        return entry.membership.view(memberId);
      } finally {
        this.dropIfEmpty(join.group);
      }
    });
  }

  /**
   * Keeps the member alive and acknowledges partitions taken from it since its last heartbeat.
   * Throws UnknownMemberError when it expired or never joined: it must join again.
   */
  async heartbeat(group: string, memberId: string): Promise<MemberAssignment> {
    this.assertOpen();
    assertId('group', group);
    assertId('member id', memberId);
    const entry = this.touch(group);
    try {
      if (!entry?.membership.heartbeat(memberId, this.now())) throw new UnknownMemberError(group, memberId);
      return entry.membership.view(memberId);
    } finally {
      this.dropIfEmpty(group);
    }
  }

  /** Removes the member; its partitions move at once. Leaving twice, or after expiry, is a no-op. */
  async leave(group: string, memberId: string): Promise<void> {
    this.assertOpen();
    assertId('group', group);
    assertId('member id', memberId);
    this.touch(group)?.membership.leave(memberId);
    this.dropIfEmpty(group);
  }

  /**
   * Stores offsets durably. With a fence, the member must own every partition it commits, which
   * includes partitions whose revocation it has not acknowledged yet; without one (standalone
   * consumers) any commit is accepted. The fence's generation is not compared: ownership is
   * the fence, which lets a member commit across rebalances that did not touch its partitions.
   * Ownership is checked when the call starts: a commit accepted then is stored even if the
   * partition moves while it is being written (a member awaits its commits before it heartbeats,
   * so this only happens to members that break that contract).
   */
  async commit(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void> {
    this.assertOpen();
    assertId('group', group);
    for (const commit of commits) assertOffsetCommit(commit);
    if (fence) assertFence(fence);
    if (commits.length === 0) return;
    await this.assertPartitionsExist(commits);
    this.assertOpen();
    const existing = this.touch(group);
    if (fence) {
      const membership = existing?.membership;
      if (!membership?.has(fence.memberId)) {
        this.dropIfEmpty(group);
        throw new UnknownMemberError(group, fence.memberId);
      }
      for (const c of commits) {
        if (!membership.owns(fence.memberId, c.topic, c.partition)) {
          throw new NotPartitionOwnerError(group, fence.memberId, c.topic, c.partition);
        }
      }
    }
    if (!existing && this.groups.size >= this.maxGroups) throw tooManyGroups(this.maxGroups);
    const entry = existing ?? this.entry(group);
    const committedAt = this.now();
    const records: GroupOffsetRecord[] = commits.map((c) => ({
      group,
      topic: c.topic,
      partition: c.partition,
      offset: c.offset,
      metadata: c.metadata ?? '',
      committedAt,
    }));
    const sequence = ++this.commitSequence;
    entry.inFlightCommits++;
    // Async wrapper: a store that throws synchronously must still reach the finally below.
    const write = (async () => this.store.persist(records))();
    const inFlight: InFlightCommit = { done: write, deletedTopics: new Set() };
    this.inFlight.add(inFlight);
    try {
      await write;
      entry.offsets.apply(
        records.filter((r) => !inFlight.deletedTopics.has(r.topic)),
        sequence,
      );
    } finally {
      this.inFlight.delete(inFlight);
      entry.inFlightCommits--;
      this.dropIfEmpty(group);
    }
  }

  /** Committed offsets of the group, of one topic or all, sorted by topic and partition. */
  async fetch(group: string, topic?: string): Promise<CommittedOffset[]> {
    this.assertOpen();
    assertId('group', group);
    return this.groups.get(group)?.offsets.list(topic) ?? [];
  }

  /** An unknown group is described as empty, at generation 0. */
  async describe(group: string): Promise<GroupDescription> {
    this.assertOpen();
    assertId('group', group);
    const entry = this.touch(group);
    this.dropIfEmpty(group);
    if (!entry) return { group, generation: 0, strategy: DEFAULT_ASSIGNMENT_STRATEGY, members: [], offsets: [] };
    return {
      group,
      generation: entry.membership.generation,
      strategy: entry.membership.strategy,
      members: entry.membership.describeMembers(),
      offsets: entry.offsets.list(),
    };
  }

  /** Groups with members or committed offsets, sorted. */
  async list(): Promise<string[]> {
    this.assertOpen();
    this.sweep();
    return [...this.groups.keys()].sort(compareStrings);
  }

  /**
   * Called by the engine before deleting a topic: removes the topic's committed offsets from the
   * store (durably, so they cannot come back for a new topic of the same name after a restart).
   * Its in-memory offsets and partitions go with {@link topicDeleted}.
   */
  async forgetOffsets(topic: string): Promise<void> {
    if (this.state === 'new' || this.store.forget === undefined) return;
    this.assertOpen();
    const keys: OffsetKey[] = [];
    for (const [group, entry] of this.groups) {
      for (const o of entry.offsets.list(topic)) keys.push({ group, topic, partition: o.partition });
    }
    if (keys.length > 0) await this.store.forget(keys);
  }

  /**
   * Called by the engine after deleting a topic: forgets its offsets and drops its partitions.
   * Before open it does nothing, as there is no state yet (engines create topics while opening).
   */
  async topicDeleted(topic: string): Promise<void> {
    if (this.state === 'new') return;
    this.assertOpen();
    await this.topology.run(async () => {
      this.assertOpen();
      for (const commit of this.inFlight) commit.deletedTopics.add(topic);
      for (const [name, entry] of [...this.groups]) {
        entry.offsets.forgetTopic(topic);
        entry.membership.topicDeleted(topic);
        this.dropIfEmpty(name);
      }
    });
  }

  /**
   * Called by the engine when partition counts may have changed (a topic was created). Before
   * open it does nothing, as there is no state yet (engines create topics while opening).
   */
  async topicsChanged(): Promise<void> {
    if (this.state === 'new') return;
    this.assertOpen();
    await this.topology.run(async () => {
      this.assertOpen();
      const topics = new Set<string>();
      for (const entry of this.groups.values()) for (const t of entry.membership.subscribedTopics()) topics.add(t);
      const counts = await this.fetchPartitionCounts([...topics]);
      this.assertOpen();
      for (const entry of this.groups.values()) entry.membership.updatePartitionCounts(counts);
    });
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new EngineClosedError();
  }

  /** The group's entry with its expired members removed, or undefined when there is none. */
  private touch(group: string): GroupEntry | undefined {
    const entry = this.groups.get(group);
    entry?.membership.expire(this.now());
    return entry;
  }

  private entry(group: string): GroupEntry {
    let entry = this.groups.get(group);
    if (!entry) {
      entry = { membership: new ConsumerGroup(group, this.maxMembersPerGroup), offsets: new GroupOffsets(), inFlightCommits: 0 };
      this.groups.set(group, entry);
    }
    return entry;
  }

  /** A group with no members, offsets or commits in flight is forgotten, keeping `groups` bounded. */
  private dropIfEmpty(group: string): void {
    const entry = this.groups.get(group);
    if (entry && entry.membership.size === 0 && entry.offsets.isEmpty && entry.inFlightCommits === 0) {
      this.groups.delete(group);
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [name, entry] of [...this.groups]) {
      entry.membership.expire(now);
      this.dropIfEmpty(name);
    }
  }

  /** Topics that do not exist (yet) count as having no partitions: members may subscribe early. */
  private async fetchPartitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const counts = await Promise.all(
      topics.map(async (topic) => {
        try {
          return await this.partitionCount(topic);
        } catch (err) {
          if (err instanceof TopicNotFoundError) return 0;
          throw err;
        }
      }),
    );
    return new Map(topics.map((topic, i) => [topic, counts[i] ?? 0]));
  }

  private async assertPartitionsExist(commits: readonly OffsetCommit[]): Promise<void> {
    const topics = [...new Set(commits.map((c) => c.topic))];
    const counts = new Map(await Promise.all(topics.map(async (t) => [t, await this.partitionCount(t)] as const)));
    for (const c of commits) {
      if (c.partition >= (counts.get(c.topic) ?? 0)) throw new PartitionNotFoundError(c.topic, c.partition);
    }
  }
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function tooManyGroups(limit: number): InvalidArgumentError {
  return new InvalidArgumentError(`too many consumer groups (limit ${limit})`);
}
