/**
 * What an on-demand snapshot reports (CdcSource.snapshotStatus, `GET /v1/admin/cdc/{source}/
 * snapshots/{id}`), and the incremental snapshot's progress records in `<prefix>.snapshot-progress`
 * folded back into it after a restart (docs/cdc.md, "Incremental snapshots").
 */
import type { Engine } from '../engine/index.js';
import { forEachProgressRecord } from './snapshot.js';

export type SnapshotMode = 'incremental' | 'blocking';

/**
 * `interrupted`: unfinished when the session ended (restart, lost connection); an incremental
 * snapshot resumes from its last completed chunk once the source streams again.
 */
export type SnapshotState = 'running' | 'interrupted' | 'complete' | 'failed';

export interface TableSnapshotProgress {
  readonly table: string;
  /** Chunks made durable (blocking mode: 1 once the table is done). */
  readonly chunks: number;
  /** `r` rows appended. */
  readonly rows: number;
  readonly done: boolean;
}

export interface SnapshotStatus {
  readonly id: string;
  readonly mode: SnapshotMode;
  readonly state: SnapshotState;
  /** The table being read, null when none is. */
  readonly table: string | null;
  readonly chunks: number;
  readonly rows: number;
  readonly tables: readonly TableSnapshotProgress[];
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** Progress records of an incremental snapshot (beside the blocking snapshot's, in the same topic). */
export type IncrementalProgress =
  | { readonly snapshot: string; readonly status: 'incremental_started'; readonly tables: readonly string[] }
  | {
      readonly snapshot: string;
      readonly status: 'incremental_chunk';
      readonly table: string;
      /** Rows of this chunk appended as `r` (the chunk less the rows changed in its window). */
      readonly rows: number;
      /** Primary-key values (text) of the last row the chunk read: the next chunk starts after it. */
      readonly lastKey: readonly string[] | null;
      /** The table is finished. */
      readonly last: boolean;
    }
  | { readonly snapshot: string; readonly status: 'incremental_complete' }
  | { readonly snapshot: string; readonly status: 'incremental_failed'; readonly code: string; readonly message: string };

/** A snapshot's progress as the runner updates it. */
export class SnapshotTracker {
  state: SnapshotState = 'running';
  table: string | null = null;
  error: { code: string; message: string } | null = null;
  readonly tables = new Map<string, { chunks: number; rows: number; done: boolean; lastKey: readonly string[] | null }>();

  constructor(
    readonly id: string,
    readonly mode: SnapshotMode,
    tables: readonly string[],
  ) {
    for (const t of tables) this.tables.set(t, { chunks: 0, rows: 0, done: false, lastKey: null });
  }

  /** Applies one progress record (reading the topic back, or after appending it). */
  apply(p: IncrementalProgress): void {
    switch (p.status) {
      case 'incremental_started':
        return;
      case 'incremental_chunk': {
        const t = this.tables.get(p.table);
        if (!t) return;
        t.chunks++;
        t.rows += p.rows;
        t.lastKey = p.lastKey;
        t.done = p.last;
        return;
      }
      case 'incremental_complete':
        this.state = 'complete';
        this.table = null;
        return;
      case 'incremental_failed':
        this.state = 'failed';
        this.table = null;
        this.error = { code: p.code, message: p.message };
        return;
      default: {
        const never: never = p;
        throw new Error(`unknown progress record ${JSON.stringify(never)}`);
      }
    }
  }

  /** Blocking mode: a table's rows are durable (its `table_done` record appended). */
  tableDone(table: string, rows: number): void {
    const t = this.tables.get(table);
    if (t) Object.assign(t, { chunks: 1, rows, done: true });
    this.table = [...this.tables].find(([, p]) => !p.done)?.[0] ?? null;
  }

  view(): SnapshotStatus {
    const tables = [...this.tables].map(([table, t]) => ({ table, chunks: t.chunks, rows: t.rows, done: t.done }));
    return {
      id: this.id,
      mode: this.mode,
      state: this.state,
      table: this.table,
      chunks: tables.reduce((n, t) => n + t.chunks, 0),
      rows: tables.reduce((n, t) => n + t.rows, 0),
      tables,
      error: this.error,
    };
  }
}

/** Incremental snapshots remembered when reading the progress topic back; older ones are forgotten. */
export const MAX_REMEMBERED_SNAPSHOTS = 64;

const INCREMENTAL = new Set(['incremental_started', 'incremental_chunk', 'incremental_complete', 'incremental_failed']);

/**
 * Reads the progress topic and folds the incremental snapshots' records, newest last (at most
 * MAX_REMEMBERED_SNAPSHOTS). A snapshot with neither `complete` nor `failed` is `interrupted`.
 */
export async function readIncrementalSnapshots(engine: Engine, topic: string): Promise<SnapshotTracker[]> {
  const found = new Map<string, SnapshotTracker>();
  await forEachProgressRecord(engine, topic, (p) => {
    if (typeof p.status !== 'string' || !INCREMENTAL.has(p.status)) return;
    const progress = p as IncrementalProgress;
    if (progress.status === 'incremental_started') {
      found.delete(progress.snapshot);
      found.set(progress.snapshot, new SnapshotTracker(progress.snapshot, 'incremental', progress.tables));
      if (found.size > MAX_REMEMBERED_SNAPSHOTS) found.delete(found.keys().next().value!);
    } else {
      found.get(progress.snapshot)?.apply(progress);
    }
  });
  const out = [...found.values()];
  for (const t of out) if (t.state === 'running') t.state = 'interrupted';
  return out;
}
