import { TopicNotFoundError } from '../../../src/engine/errors.js';
import type { GroupCoordinatorOptions, GroupOffsetRecord, OffsetStore } from '../../../src/engine/groups/index.js';
import { GroupCoordinator } from '../../../src/engine/groups/index.js';

/** An OffsetStore in memory: latest record per key, like a compacted topic. Can be made to fail. */
export class MemoryOffsetStore implements OffsetStore {
  readonly records = new Map<string, GroupOffsetRecord>();
  persistCalls = 0;
  failNext: Error | undefined;

  async load(): Promise<GroupOffsetRecord[]> {
    return [...this.records.values()];
  }

  async persist(records: readonly GroupOffsetRecord[]): Promise<void> {
    this.persistCalls++;
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    for (const r of records) this.records.set(JSON.stringify([r.group, r.topic, r.partition]), r);
  }
}

/** A clock that moves only when told to. */
export class FakeClock {
  constructor(public time = 1_000_000) {}
  readonly now = (): number => this.time;
  advance(ms: number): void {
    this.time += ms;
  }
}

/** Topic partition counts the tests can change, standing in for the engine. */
export class FakeTopics {
  readonly counts = new Map<string, number>();
  constructor(initial: Record<string, number> = {}) {
    for (const [topic, count] of Object.entries(initial)) this.counts.set(topic, count);
  }
  readonly partitionCount = async (topic: string): Promise<number> => {
    const count = this.counts.get(topic);
    if (count === undefined) throw new TopicNotFoundError(topic);
    return count;
  };
}

export interface Fixture {
  readonly coordinator: GroupCoordinator;
  readonly store: MemoryOffsetStore;
  readonly clock: FakeClock;
  readonly topics: FakeTopics;
  /** A second coordinator over the same store, topics and clock (a restart). */
  reopen(): Promise<GroupCoordinator>;
}

export async function fixture(
  topics: Record<string, number>,
  options: Partial<Pick<GroupCoordinatorOptions, 'maxGroups' | 'maxMembersPerGroup'>> = {},
): Promise<Fixture> {
  const store = new MemoryOffsetStore();
  const clock = new FakeClock();
  const fake = new FakeTopics(topics);
  const make = async (): Promise<GroupCoordinator> => {
    const c = new GroupCoordinator({ offsetStore: store, partitionCount: fake.partitionCount, now: clock.now, ...options });
    await c.open();
    return c;
  };
  const coordinator = await make();
  return { coordinator, store, clock, topics: fake, reopen: make };
}

export const partitionsOf = (assignment: readonly { topic: string; partition: number }[]): string[] =>
  assignment.map((tp) => `${tp.topic}/${tp.partition}`).sort();
