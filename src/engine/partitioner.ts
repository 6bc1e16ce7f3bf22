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

/** A produce batch split by partition, remembering where each record went. */
export interface RoutedBatch<R extends { readonly key?: Uint8Array | null }> {
  /** Partition of each input record, by input index. */
  readonly targets: number[];
  /** Records per partition, in input order. */
  readonly byPartition: Map<number, R[]>;
}

/**
 * Routes records by key hash; records without a key all go to `unkeyedPartition`, so an unkeyed
 * batch stays together (and in order) on one partition.
 */
export function routeByKey<R extends { readonly key?: Uint8Array | null }>(
  records: readonly R[],
  partitions: number,
  unkeyedPartition: number,
): RoutedBatch<R> {
  const targets = new Array<number>(records.length);
  const byPartition = new Map<number, R[]>();
  for (let i = 0; i < records.length; i++) {
    const key = records[i]!.key;
    const p = key ? partitionForKey(key, partitions) : unkeyedPartition;
    targets[i] = p;
    let list = byPartition.get(p);
    if (!list) byPartition.set(p, (list = []));
    list.push(records[i]!);
  }
  return { targets, byPartition };
}
