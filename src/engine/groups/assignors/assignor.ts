/**
 * The contract every assignor meets: a pure, deterministic function from the group's members and
 * the partition counts of their topics to one owner per partition.
 */

export interface AssignorMember {
  readonly id: string;
  readonly topics: ReadonlySet<string>;
}

export interface AssignorInput {
  /** In any order: assignors sort by id, so the result does not depend on join order. */
  readonly members: readonly AssignorMember[];
  /** Partition count per topic. Topics with no partitions or no subscriber are left out of the result. */
  readonly partitions: ReadonlyMap<string, number>;
  /** The previous result; only `sticky` consults it. */
  readonly previous: TopicAssignment;
}

/** `get(topic)[p]` is the id of the member partition `p` of `topic` is assigned to. */
export type TopicAssignment = ReadonlyMap<string, readonly string[]>;

export type Assignor = (input: AssignorInput) => TopicAssignment;

/** A topic to assign: it has partitions and at least one subscriber (sorted by id). */
export interface AssignableTopic {
  readonly topic: string;
  readonly count: number;
  readonly subscribers: readonly AssignorMember[];
}

/** Code-unit order, not locale order: every node must compute the same assignment. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortById(members: readonly AssignorMember[]): AssignorMember[] {
  return [...members].sort((a, b) => compareStrings(a.id, b.id));
}

/** Topics that get an assignment, sorted by name, each with its subscribers sorted by id. */
export function assignableTopics(input: AssignorInput): AssignableTopic[] {
  const members = sortById(input.members);
  const out: AssignableTopic[] = [];
  for (const topic of [...input.partitions.keys()].sort(compareStrings)) {
    const count = input.partitions.get(topic) ?? 0;
    const subscribers = members.filter((m) => m.topics.has(topic));
    if (count > 0 && subscribers.length > 0) out.push({ topic, count, subscribers });
  }
  return out;
}
