/**
 * Channel patterns in capabilities: a channel name in which `*` stands for any run of characters
 * (possibly empty). Matched without regular expressions, so a pattern with many stars cannot
 * backtrack catastrophically.
 */
export function matchesChannel(pattern: string, channel: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < channel.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.length && pattern[p] === channel[t]) {
      p++;
      t++;
    } else if (star !== -1) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}
