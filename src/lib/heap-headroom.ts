/**
 * Keeps room in V8's old generation between full garbage collections (docs/runtime.md).
 *
 * V8 gives a small heap a tight limit (about 1.2 × live), so a server promoting ~1 MB/s ran a
 * full collection every second, each holding the event loop up for 10–25 ms on a busy machine.
 * V8 reads `--heap-growing-percent` whenever it sets the next limit, so this sets it at start
 * and after every full collection: the limit becomes at least live + headroom while the heap is
 * small, and V8's own heuristics take over (percent 0) once it is large.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Above this the computed factor is capped: a near-empty heap needs no more than ~10× room. */
export const MAX_GROWING_PERCENT = 1000;

/**
 * The growing percent that puts the next full collection at `live + headroom`, or 0 (V8's own
 * factor) once the live heap is at least twice the headroom.
 */
export function growingPercentFor(liveBytes: number, headroomBytes: number): number {
  if (headroomBytes <= 0 || liveBytes >= 2 * headroomBytes) return 0;
  return Math.min(MAX_GROWING_PERCENT, Math.ceil((headroomBytes / Math.max(liveBytes, 1)) * 100));
}

export interface HeapHeadroomOptions {
  /** Reads the live heap after a full collection. @defaultValue v8's used_heap_size */
  readonly liveBytes?: () => number;
  /** Applies a percent. @defaultValue v8.setFlagsFromString('--heap-growing-percent=N') */
  readonly setGrowingPercent?: (percent: number) => void;
}

/** Starts keeping `headroomBytes` of room; the returned function stops and restores V8's factor. */
export function keepHeapHeadroom(headroomBytes: number, options: HeapHeadroomOptions = {}): () => void {
  const liveBytes = options.liveBytes ?? (() => v8.getHeapStatistics().used_heap_size);
  const setPercent = options.setGrowingPercent ?? ((percent: number) => v8.setFlagsFromString(`--heap-growing-percent=${percent}`));
  let current = -1;
  const apply = (): void => {
    const percent = growingPercentFor(liveBytes(), headroomBytes);
    if (percent === current) return;
    current = percent;
    setPercent(percent);
  };
  apply();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) return apply();
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => {
    observer.disconnect();
    if (current !== 0) setPercent(0);
    current = 0;
  };
}
