/**
 * UTF-8 byte length of a string without encoding it (TextEncoder would allocate a copy). On Node
 * the native `Buffer.byteLength` is used when present (10-20× faster than the loop below, which
 * is what browsers run); it is looked up on `globalThis` so no Node import reaches the bundle.
 */
const nativeByteLength: ((s: string) => number) | undefined = (() => {
  const buffer = (globalThis as { Buffer?: { byteLength?: (s: string, encoding: 'utf8') => number } }).Buffer;
  const byteLength = buffer?.byteLength;
  return typeof byteLength === 'function' ? (s: string) => byteLength.call(buffer, s, 'utf8') : undefined;
})();

export function utf8Length(s: string): number {
  return nativeByteLength === undefined ? utf8LengthPortable(s) : nativeByteLength(s);
}

/** The portable count: lone surrogates count as U+FFFD (3 bytes), as every UTF-8 encoder writes them. */
export function utf8LengthPortable(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair: 2 UTF-16 units, 4 UTF-8 bytes.
      bytes += 2;
      i++;
    } else bytes += 2; // 3 bytes (a lone surrogate is encoded as U+FFFD, also 3 bytes)
  }
  return bytes;
}
