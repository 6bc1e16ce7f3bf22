import { matchesWildcard } from '../lib/wildcard.js';

/**
 * Channel patterns in capabilities: a channel name in which `*` stands for any run of characters
 * (possibly empty).
 */
export function matchesChannel(pattern: string, channel: string): boolean {
  return matchesWildcard(pattern, channel);
}
