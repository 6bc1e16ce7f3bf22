/**
 * Topic patterns in permissions: a topic name in which `*` stands for any run of characters
 * (dots included, possibly empty). `orders.*` matches `orders.eu` and `orders.eu.v2`; `*` matches
 * every topic except Brook's own `__` topics, which only a pattern starting with `__` matches, so
 * a wildcard grant never reaches other tenants' group offsets by accident.
 */
import { z } from 'zod';
import { matchesWildcard } from '../../lib/wildcard.js';

/** Topic name characters plus `*`; at most 256 characters. */
export const topicPatternSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[a-zA-Z0-9._*-]+$/, 'a topic pattern uses [a-zA-Z0-9._-] and *');

/** True when `topic` matches `pattern` (see the header: `__` topics only for `__` patterns). */
export function matchesTopic(pattern: string, topic: string): boolean {
  if (topic.startsWith('__') && !pattern.startsWith('__')) return false;
  return matchesWildcard(pattern, topic);
}
