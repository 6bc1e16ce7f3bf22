import type { JetStreamManager } from 'nats';

/**
 * Deletes what the native queue backend keeps under `prefix` (docs/queues.md, "JetStream-native
 * backend"): queue and DLQ streams, the receipt-key and lease-extension buckets, for tests that
 * keep the engine's own streams (the engine's `destroy()` deletes these too).
 */
export async function deleteNativeQueues(jsm: JetStreamManager, prefix: string): Promise<void> {
  for (const subjects of [`${prefix}__q.>`, `${prefix}__qdlq.>`]) {
    for await (const info of jsm.streams.list(subjects)) await jsm.streams.delete(info.config.name);
  }
  for (const bucket of [`KV_${prefix}__qkey`, `KV_${prefix}__qlease`]) {
    await jsm.streams.delete(bucket).catch(() => false); // never opened by this test
  }
}
