/**
 * Topic patterns in permissions: a topic name in which `*` stands for any run of characters
 * (dots included, possibly empty). `orders.*` matches `orders.eu` and `orders.eu.v2`; `*` matches
 * every topic except Brook's own `__` topics, which only a pattern starting with `__` matches, so
 * a wildcard grant never reaches other tenants' group offsets by accident.
 */
import { z } from 'zod';

/** Topic name characters plus `*`; at most 256 characters. */
export const topicPatternSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[a-zA-Z0-9._*-]+$/, 'a topic pattern uses [a-zA-Z0-9._-] and *');

/**
 * True when `topic` matches `pattern`. Linear in practice and O(pattern × topic) at worst (no
 * regular expression, so no catastrophic backtracking on patterns with many stars).
 */
export function matchesTopic(pattern: string, topic: string): boolean {
  if (topic.startsWith('__') && !pattern.startsWith('__')) return false;
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < topic.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.length && pattern[p] === topic[t]) {
      p++;
      t++;
    } else if (star !== -1) {
      // Let the last star swallow one more character and retry from there.
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
