/**
 * Glob matching with one wildcard: `*` stands for any run of characters (possibly empty), every
 * other character for itself. Used by topic permissions and channel capabilities. Linear in
 * practice and O(pattern × text) at worst: no regular expression, so a pattern with many stars
 * cannot backtrack catastrophically.
 */
export function matchesWildcard(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.length && pattern[p] === text[t]) {
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
