import { assignableTopics, type AssignorInput, type TopicAssignment } from './assignor.js';

/**
 * Per topic, contiguous ranges of partitions over the topic's subscribers sorted by id; the first
 * `count % subscribers` members get one partition more (Kafka's RangeAssignor).
 */
export function rangeAssign(input: AssignorInput): TopicAssignment {
  const out = new Map<string, string[]>();
  for (const { topic, count, subscribers } of assignableTopics(input)) {
    const base = Math.floor(count / subscribers.length);
    const extra = count % subscribers.length;
    const owners: string[] = [];
    subscribers.forEach((member, i) => {
      const n = base + (i < extra ? 1 : 0);
      for (let k = 0; k < n; k++) owners.push(member.id);
    });
    out.set(topic, owners);
  }
  return out;
}
