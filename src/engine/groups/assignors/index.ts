import type { AssignmentStrategy } from '../../types.js';
import type { Assignor } from './assignor.js';
import { rangeAssign } from './range.js';
import { roundRobinAssign } from './round-robin.js';
import { stickyAssign } from './sticky.js';

export type { Assignor, AssignorInput, AssignorMember, TopicAssignment } from './assignor.js';
export { compareStrings } from './assignor.js';
export { rangeAssign, roundRobinAssign, stickyAssign };

export function assignorFor(strategy: AssignmentStrategy): Assignor {
  switch (strategy) {
    case 'range':
      return rangeAssign;
    case 'round-robin':
      return roundRobinAssign;
    case 'sticky':
      return stickyAssign;
  }
}
