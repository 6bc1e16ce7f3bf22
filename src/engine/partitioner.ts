/**
 * Key → partition. FNV-1a (32-bit) over the key bytes: fast, stable across engines and
 * processes, and documented in docs/engines.md so other clients can route the same way.
 */
export function hashKey(key: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key[i]!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function partitionForKey(key: Uint8Array, partitions: number): number {
  return hashKey(key) % partitions;
}
