import { assignableTopics, sortById, type AssignorInput, type TopicAssignment } from './assignor.js';

/**
 * All topic-partitions in (topic, partition) order, dealt one by one over the members sorted by
 * id, skipping members not subscribed to the partition's topic (Kafka's RoundRobinAssignor).
 */
export function roundRobinAssign(input: AssignorInput): TopicAssignment {
  const members = sortById(input.members);
  const out = new Map<string, string[]>();
  let next = 0;
  for (const { topic, count } of assignableTopics(input)) {
    const owners: string[] = [];
    for (let p = 0; p < count; p++) {
      // Terminates: assignableTopics only yields topics with at least one subscriber.
      for (;;) {
        const member = members[next++ % members.length];
        if (member?.topics.has(topic)) {
          owners.push(member.id);
          break;
        }
      }
    }
    out.set(topic, owners);
  }
  return out;
}
