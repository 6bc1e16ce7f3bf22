/**
 * One PostgreSQL CDC source: pre-flight checks, topics, snapshot, then streaming with
 * exactly-once appends (docs/cdc.md). Owns its connections; the server starts and stops it.
 *
 * @example
 * const source = new CdcSource({ config: parseCdcSourceConfig({ url, tables: ['public.orders'] }), engine, logger });
 * await source.start(); // rejects with a CdcError the user can act on
 * // ...
 * await source.stop();
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TopicExistsError, TopicNotFoundError, type Engine } from '../engine/index.js';
import { Catalog, type CapturedTable } from './catalog.js';
import { snapshotProgressTopic, tableTopic, transactionsTopic, type CdcSourceConfig } from './config.js';
import { CdcError, type CdcErrorCode } from './errors.js';
import { LogWriter } from './log-writer.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';
import { NO_METRICS, type CdcMetricsSink } from './metrics.js';
import { floorKey, lastPosition, type StreamPosition } from './positions.js';
import { ReplicationConnection } from './replication-connection.js';
import { runIncrementalSnapshot } from './incremental-snapshot.js';
import { append, readSnapshotState, runSnapshot, type SnapshotSink } from './snapshot.js';
import { readIncrementalSnapshots, SnapshotTracker, type IncrementalProgress, type SnapshotMode, type SnapshotStatus } from './snapshot-status.js';
import { StreamPipeline, type PreparedTable } from './stream-pipeline.js';
import { WatermarkObserver } from './watermark-window.js';

export type CdcSourceState = 'idle' | 'starting' | 'snapshotting' | 'streaming' | 'reconnecting' | 'failed' | 'stopped';

export interface CdcSourceOptions {
  readonly config: CdcSourceConfig;
  /** An opened engine; the source never opens or closes it. */
  readonly engine: Engine;
  readonly logger: Logger;
  readonly metrics?: CdcMetricsSink;
}

export interface CdcSourceStatus {
  readonly name: string;
  readonly state: CdcSourceState;
  readonly slot: string;
  readonly publication: string;
  /** `schema.table` of every captured table (with `schemas`: as of the last start). */
  readonly tables: readonly string[];
  readonly confirmedLsn: string | null;
  /** WAL the slot holds back, as last read (every `lagIntervalMs`); null before the first read. */
  readonly slotLagBytes: number | null;
  readonly lastError: { readonly code: string; readonly message: string } | null;
  /** The on-demand snapshot running or waiting to resume, null when none is. */
  readonly snapshot: SnapshotStatus | null;
}

interface LiveSession {
  readonly pipeline: StreamPipeline;
  readonly writer: LogWriter;
  readonly byName: ReadonlyMap<string, PreparedTable>;
  readonly skip: Map<number, Lsn>;
  readonly db: string;
  readonly progressTopic: string;
  readonly observer: WatermarkObserver;
  readonly stopped: () => unknown;
}

const BACKOFF_MIN_MS = 200;
/** Snapshot statuses kept in memory for `snapshotStatus`; older ones are read from the progress topic. */
const MAX_TRACKED_SNAPSHOTS = 32;
const BACKOFF_MAX_MS = 30_000;

export class CdcSource {
  private readonly config: CdcSourceConfig;
  private readonly engine: Engine;
  private readonly logger: Logger;
  private readonly metrics: CdcMetricsSink;
  private state: CdcSourceState = 'idle';
  private confirmed: Lsn | null = null;
  private lastError: CdcError | null = null;
  private stopping = false;
  private running: Promise<void> | null = null;
  /** Ends the current session (stop or error). */
  private endSession: ((err?: unknown) => void) | null = null;
  private sessionClosed: Promise<void> | null = null;
  /** Cuts a reconnect backoff short on stop. */
  private wake: (() => void) | null = null;
  /** What an on-demand snapshot needs from the streaming session, while there is one. */
  private live: LiveSession | null = null;
  /** The on-demand snapshot running (or interrupted, to resume): one at a time. */
  private active: SnapshotTracker | null = null;
  /** Snapshots of this process, newest last (at most MAX_TRACKED_SNAPSHOTS). */
  private readonly snapshots = new Map<string, SnapshotTracker>();
  /** Snapshot runs still unwinding; stop() and the next session's resume wait for them. */
  private readonly runs = new Set<Promise<unknown>>();
  private slotLag: number | null = null;
  /** The captured tables as last resolved (schema mode: known once a session started). */
  private captured: readonly string[] = [];

  constructor(options: CdcSourceOptions) {
    this.config = options.config;
    this.engine = options.engine;
    this.logger = options.logger.child({ component: 'cdc', source: options.config.name });
    this.metrics = options.metrics ?? NO_METRICS;
  }

  get name(): string {
    return this.config.name;
  }

  status(): CdcSourceStatus {
    return {
      name: this.config.name,
      state: this.state,
      slot: this.config.slot,
      publication: this.config.publication,
      tables: this.captured.length > 0 ? this.captured : (this.config.tables ?? []),
      confirmedLsn: this.confirmed === null ? null : formatLsn(this.confirmed),
      slotLagBytes: this.slotLag,
      lastError: this.lastError === null ? null : { code: this.lastError.code, message: this.lastError.message },
      snapshot: this.active === null ? null : this.active.view(),
    };
  }

  /**
   * Runs the pre-flight checks, the snapshot if one is due, and starts streaming. Rejects with a
   * CdcError when the first attempt fails; later failures reconnect with backoff (or, when the
   * user must act, leave the source `failed` with `status().lastError`).
   */
  async start(): Promise<void> {
    if (this.running) throw new CdcError('CDC_CONFIG_INVALID', `CDC source ${this.config.name} was already started`);
    this.state = 'starting';
    let started!: () => void;
    let failedFirst!: (err: unknown) => void;
    const firstStart = new Promise<void>((resolve, reject) => {
      started = resolve;
      failedFirst = reject;
    });
    let first = true;
    this.running = (async () => {
      let attempt = 0;
      while (!this.stopping) {
        try {
          await this.session(() => {
            attempt = 0;
            if (first) {
              first = false;
              started();
            }
          });
          if (this.stopping) break;
        } catch (raw) {
          const err = raw instanceof CdcError ? raw : new CdcError('CDC_CONNECTION', (raw as Error).message ?? String(raw), { cause: raw });
          if (this.stopping) break;
          this.lastError = err;
          this.metrics.error(this.config.name, err.code);
          if (first) {
            first = false;
            this.state = 'failed';
            failedFirst(err);
            return;
          }
          // A slot still held by a walsender that outlived our last connection frees up by itself.
          if (err.fatal && err.code !== 'CDC_PROTOCOL' && err.code !== 'CDC_SLOT_IN_USE') {
            this.state = 'failed';
            this.logger.error({ err, code: err.code }, 'CDC source stopped: needs attention');
            return;
          }
          this.state = 'reconnecting';
          const delay = Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt++);
          this.logger.warn({ err, code: err.code, retryInMs: Math.round(delay) }, 'CDC session ended; reconnecting');
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, delay);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wake = null;
        }
      }
      this.state = 'stopped';
      if (first) {
        first = false;
        failedFirst(new CdcError('CDC_CONNECTION', `CDC source ${this.config.name} was stopped before it started streaming`));
      }
    })();
    await firstStart;
  }

  /** Stops streaming after the appends in flight are durable and confirmed. Idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.endSession?.();
    this.wake?.();
    await this.sessionClosed;
    await this.running;
    await Promise.all(this.runs);
    this.state = 'stopped';
  }

  /**
   * Starts an on-demand snapshot of `tables` (`schema.table`, captured by this source) while
   * streaming, and returns its status at once (`snapshotStatus(id)` follows it).
   *
   * - `incremental` (default): streaming goes on; each table is read in chunks by primary key
   *   between watermarks (docs/cdc.md, "Incremental snapshots"), its rows appended as `op: "r"`
   *   with `source.snapshot: "incremental"`. Resumes from the last durable chunk after a restart.
   * - `blocking`: streaming holds at a transaction boundary while the tables are read in one
   *   exported snapshot; each table's topic gets a reset (`op: "t"`) and then its rows.
   *
   * One snapshot runs per source at a time: another request is refused with
   * `CDC_SNAPSHOT_IN_PROGRESS` (nothing is queued, so nothing waits unseen across a restart).
   *
   * @example
   * const { id } = source.startSnapshot(['public.orders']);
   * // ... later: source.snapshotStatus(id) → { state: 'complete', rows: 1200, ... }
   */
  startSnapshot(tables: readonly string[], options: { readonly mode?: SnapshotMode } = {}): SnapshotStatus {
    return this.beginSnapshot(tables, options.mode ?? 'incremental').tracker.view();
  }

  /** `startSnapshot`, resolving once the snapshot is complete (rejects if it fails or its session ends). */
  async snapshot(tables: readonly string[], options: { readonly mode?: SnapshotMode } = {}): Promise<void> {
    await this.beginSnapshot(tables, options.mode ?? 'incremental').done;
  }

  /** A snapshot's progress: the one running, one of this process, or one found in the progress topic. */
  async snapshotStatus(id: string): Promise<SnapshotStatus> {
    const known = this.snapshots.get(id);
    if (known) return known.view();
    const found = (await readIncrementalSnapshots(this.engine, snapshotProgressTopic(this.config.topicPrefix))).find((t) => t.id === id);
    if (!found) throw new CdcError('CDC_SNAPSHOT_NOT_FOUND', `CDC source ${this.config.name} has no snapshot ${JSON.stringify(id.slice(0, 80))}`);
    return found.view();
  }

  private beginSnapshot(names: readonly string[], mode: SnapshotMode): { tracker: SnapshotTracker; done: Promise<void> } {
    if (this.active !== null) {
      throw new CdcError('CDC_SNAPSHOT_IN_PROGRESS', `CDC source ${this.config.name} is already taking snapshot ${this.active.id} (one at a time); wait for it to finish`);
    }
    const live = this.live;
    if (live === null) throw new CdcError('CDC_NOT_STREAMING', `CDC source ${this.config.name} is not streaming (state ${this.state}); try again once it is`);
    const unique = [...new Set(names)];
    if (unique.length === 0) throw new CdcError('CDC_CONFIG_INVALID', 'a snapshot needs at least one table');
    const todo = unique.map((name) => {
      const t = live.byName.get(name);
      if (!t) throw new CdcError('CDC_TABLE_NOT_FOUND', `table ${name} is not captured by CDC source ${this.config.name}`);
      if (mode === 'incremental' && t.primaryKey.length === 0) {
        throw new CdcError('CDC_SNAPSHOT_NO_PRIMARY_KEY', `table ${name} has no primary key, which an incremental snapshot pages by. Fix: use mode "blocking" for it.`);
      }
      return t;
    });
    const tracker = new SnapshotTracker(randomUUID(), mode, unique);
    this.remember(tracker);
    this.active = tracker;
    const done = this.track(mode === 'incremental' ? this.incremental(live, tracker, todo, true) : this.blocking(live, tracker, todo));
    return { tracker, done };
  }

  private track<T>(run: Promise<T>): Promise<T> {
    const settled = run.then(
      () => undefined,
      () => undefined, // reported through the tracker and the log; `snapshot()` callers get the rejection
    );
    this.runs.add(settled);
    void settled.then(() => this.runs.delete(settled));
    return run;
  }

  private remember(tracker: SnapshotTracker): void {
    this.snapshots.set(tracker.id, tracker);
    if (this.snapshots.size > MAX_TRACKED_SNAPSHOTS) this.snapshots.delete(this.snapshots.keys().next().value!);
  }

  /** Where a snapshot on the live session writes its rows and progress. */
  private sinkOf(live: LiveSession): SnapshotSink {
    return {
      db: live.db,
      source: this.config.name,
      chunkRows: this.config.snapshotChunkRows,
      writer: live.writer,
      engine: this.engine,
      progressTopic: live.progressTopic,
      metrics: this.metrics,
    };
  }

  /** Runs an incremental snapshot on the live session; `fresh` appends its `incremental_started` record first. */
  private async incremental(live: LiveSession, tracker: SnapshotTracker, tables: readonly PreparedTable[], fresh: boolean): Promise<void> {
    try {
      if (fresh) {
        const started: IncrementalProgress = { snapshot: tracker.id, status: 'incremental_started', tables: [...tracker.tables.keys()] };
        await this.engine.append(live.progressTopic, 0, [{ key: null, value: Buffer.from(JSON.stringify(started)) }]);
      }
      tracker.state = 'running';
      this.logger.info({ snapshot: tracker.id, tables: [...tracker.tables.keys()], resumed: !fresh }, 'CDC incremental snapshot started');
      await runIncrementalSnapshot({
        url: this.config.url,
        tracker,
        tables,
        ...this.sinkOf(live),
        observer: live.observer,
        failed: live.stopped,
        logger: this.logger,
      });
      this.logger.info({ snapshot: tracker.id, rows: tracker.view().rows }, 'CDC incremental snapshot complete');
      this.active = null;
    } catch (raw) {
      if (live.stopped() !== null || this.live !== live) {
        // The session ended: the next one resumes from the last durable chunk.
        tracker.state = 'interrupted';
        throw raw;
      }
      const err = raw instanceof CdcError ? raw : new CdcError('CDC_PROTOCOL', (raw as Error).message ?? String(raw), { cause: raw });
      this.logger.error({ err, snapshot: tracker.id, code: err.code }, 'CDC incremental snapshot failed');
      await this.failIncremental(live, tracker, err.code, err.message).catch((appendErr: unknown) =>
        this.logger.warn({ err: appendErr, snapshot: tracker.id }, 'could not record the failed snapshot; it resumes after a restart'),
      );
      throw err;
    }
  }

  /** Once streaming: resumes the incremental snapshot an earlier session or process left unfinished. */
  private async resumeSnapshot(live: LiveSession): Promise<void> {
    await Promise.all(this.runs);
    if (this.live !== live) return;
    let tracker = this.active;
    if (tracker?.mode === 'blocking') {
      // An interrupted blocking snapshot was finished by the session's start (readSnapshotState), before streaming.
      if (tracker.state === 'interrupted') tracker.state = 'complete';
      this.active = null;
      return;
    }
    if (tracker === null) {
      const all = await readIncrementalSnapshots(this.engine, live.progressTopic);
      tracker = all.filter((t) => t.state === 'interrupted').pop() ?? null;
      if (tracker === null) return;
      this.remember(tracker);
      this.active = tracker;
    }
    const tables = [...tracker.tables.keys()].flatMap((name) => {
      const t = live.byName.get(name);
      return t ? [t] : [];
    });
    if (tables.length !== tracker.tables.size) {
      // A table left the capture since: finishing the others would report a snapshot it is not.
      const missing = [...tracker.tables.keys()].filter((name) => !live.byName.has(name));
      await this.failIncremental(live, tracker, 'CDC_TABLE_NOT_FOUND', `tables no longer captured: ${missing.join(', ')}`);
      return;
    }
    await this.track(this.incremental(live, tracker, tables, false));
  }

  /** Ends an incremental snapshot for good: in memory at once, in the progress topic (so it is not resumed) after. */
  private async failIncremental(live: LiveSession, tracker: SnapshotTracker, code: CdcErrorCode, message: string): Promise<void> {
    const failed: IncrementalProgress = { snapshot: tracker.id, status: 'incremental_failed', code, message };
    tracker.apply(failed);
    this.active = null;
    await this.engine.append(live.progressTopic, 0, [{ key: null, value: Buffer.from(JSON.stringify(failed)) }]);
  }

  private async blocking(live: LiveSession, tracker: SnapshotTracker, todo: readonly PreparedTable[]): Promise<void> {
    const id = tracker.id;
    const names = [...tracker.tables.keys()];
    tracker.table = names[0] ?? null;
    try {
      await append(this.engine, live.progressTopic, { snapshot: id, status: 'started', tables: names, onDemand: true });
      await live.pipeline.hold();
      const exporter = new ReplicationConnection(this.config.url, this.config.slot);
      try {
        await exporter.connect();
        const created = await exporter.createSlot(`${this.config.slot.slice(0, 40)}_snap_${process.pid}`, { exportSnapshot: true, temporary: true });
        this.logger.info({ snapshot: id, tables: names, consistentPoint: formatLsn(created.consistentPoint) }, 'CDC blocking snapshot started');
        await runSnapshot({
          url: this.config.url,
          snapshotName: created.snapshotName!,
          consistentPoint: created.consistentPoint,
          snapshotId: id,
          tables: todo,
          ...this.sinkOf(live),
          failed: live.stopped,
          resetFirst: true,
          onTableDone: (table, rows) => tracker.tableDone(table, rows),
        });
        for (const t of todo) live.skip.set(t.oid, created.consistentPoint);
        await append(this.engine, live.progressTopic, { snapshot: id, status: 'complete', skip: {} });
        tracker.state = 'complete';
        tracker.table = null;
        this.active = null;
        this.logger.info({ snapshot: id }, 'CDC blocking snapshot complete');
      } finally {
        await exporter.close();
        live.pipeline.release();
      }
    } catch (raw) {
      if (live.stopped() !== null || this.live !== live) {
        // The next session's start finishes it (readSnapshotState), before streaming.
        tracker.state = 'interrupted';
        throw raw;
      }
      const err = raw instanceof CdcError ? raw : new CdcError('CDC_PROTOCOL', (raw as Error).message ?? String(raw), { cause: raw });
      tracker.state = 'failed';
      tracker.table = null;
      tracker.error = { code: err.code, message: err.message };
      this.active = null;
      throw err;
    }
  }

  private async session(onStreaming: () => void): Promise<void> {
    const c = this.config;
    const catalog = new Catalog(c.url, c.slot);
    let repl: ReplicationConnection | null = null;
    let writer: LogWriter | null = null;
    const timers: NodeJS.Timeout[] = [];
    /** A standby status update waiting to carry the newest durable position (confirmDelayMs). */
    let confirmTimer: NodeJS.Timeout | null = null;
    let closeResolve!: () => void;
    this.sessionClosed = new Promise<void>((resolve) => (closeResolve = resolve));
    let sessionError: unknown = null;
    let fail!: (err: unknown) => void;
    const ended = new Promise<void>((resolve, reject) => {
      fail = (err) => {
        if (err === undefined) resolve();
        else {
          sessionError ??= err;
          reject(err);
        }
      };
    });
    ended.catch(() => undefined); // observed below through Promise.race
    this.endSession = (err) => fail(err);

    // A stop during the pre-flight or the snapshot ends them at their next check.
    const stopped = (): unknown => sessionError ?? (this.stopping ? new CdcError('CDC_CONNECTION', 'the source is stopping') : null);
    try {
      await catalog.connect();
      await catalog.checkServer();
      const tables = await catalog.resolveTables(c.tables ?? [], c.schemas ?? []);
      this.captured = tables.map((t) => `${t.schema}.${t.table}`);
      await catalog.ensurePublication(c.publication, tables, c.schemas ?? []);
      const txTopic = transactionsTopic(c.topicPrefix);
      const progressTopic = snapshotProgressTopic(c.topicPrefix);
      await this.ensureTopic(txTopic, 1);
      await this.ensureTopic(progressTopic, 1);
      const prepared = new Map<number, PreparedTable>();
      for (const t of tables) prepared.set(t.oid, await this.prepare(t));

      let pipeline: StreamPipeline | null = null;
      let pausedForPressure = false;
      let pausedForTable = false;
      const applyPause = (): void => {
        if (!repl) return;
        if (pausedForPressure || pausedForTable) repl.pause();
        else repl.resume();
      };
      writer = new LogWriter({
        engine: this.engine,
        maxBufferedBytes: c.maxBufferedBytes,
        maxBatchRecords: c.maxBatchRecords,
        onDurable: () => pipeline?.onDurable(),
        onError: (err) => fail(err),
        onPressure: (paused) => {
          pausedForPressure = paused;
          applyPause();
        },
        linger: { topics: new Set([txTopic]), ms: c.transactionsLingerMs },
      });

      // Snapshot (when due) before streaming: the slot holds the WAL meanwhile.
      let slot = await catalog.slotState();
      const skip = new Map<number, Lsn>();
      const byName = new Map([...prepared.values()].map((t) => [`${t.schema}.${t.table}`, t]));
      if (slot?.active) {
        const deadline = Date.now() + c.slotBusyWaitMs;
        while (slot?.active && Date.now() < deadline && stopped() === null) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          slot = await catalog.slotState();
        }
      }
      if (slot) catalog.assertUsableSlot(slot);
      if (c.snapshot) {
        const state = await readSnapshotState(this.engine, progressTopic);
        if (!slot || (state.snapshot !== null && !state.complete)) {
          this.state = 'snapshotting';
          const resume = slot !== null;
          const id = resume && state.snapshot !== null ? state.snapshot : randomUUID();
          const todo = [...prepared.values()].filter((t) => {
            const name = `${t.schema}.${t.table}`;
            return !resume || (state.tables.has(name) && !state.done.has(name));
          });
          if (!resume) await append(this.engine, progressTopic, { snapshot: id, status: 'started', tables: todo.map((t) => `${t.schema}.${t.table}`) });
          // A resumed snapshot cannot reuse the lost exported snapshot: a temporary slot exports a new one.
          const exporter = new ReplicationConnection(c.url, c.slot);
          try {
            await exporter.connect();
            const created = await exporter.createSlot(resume ? `${c.slot.slice(0, 40)}_snap_${process.pid}` : c.slot, { exportSnapshot: true, temporary: resume });
            this.logger.info({ snapshot: id, tables: todo.length, consistentPoint: formatLsn(created.consistentPoint), resume }, 'CDC snapshot started');
            await runSnapshot({
              url: c.url,
              snapshotName: created.snapshotName!,
              consistentPoint: created.consistentPoint,
              snapshotId: id,
              tables: todo,
              db: catalog.database,
              source: c.name,
              chunkRows: c.snapshotChunkRows,
              writer,
              engine: this.engine,
              progressTopic,
              metrics: this.metrics,
              failed: stopped,
              resetFirst: resume,
            });
            const skipRecord: Record<string, string> = {
              ...(resume ? state.skip : {}),
              ...(resume ? Object.fromEntries(todo.map((t) => [`${t.schema}.${t.table}`, formatLsn(created.consistentPoint)])) : {}),
            };
            await append(this.engine, progressTopic, { snapshot: id, status: 'complete', skip: skipRecord });
            for (const [table, lsn] of Object.entries(skipRecord)) {
              const t = byName.get(table);
              if (t) skip.set(t.oid, parseLsn(lsn));
            }
            this.logger.info({ snapshot: id }, 'CDC snapshot complete');
          } finally {
            await exporter.close();
          }
          slot = await catalog.slotState();
        } else {
          for (const [table, lsn] of Object.entries(state.skip)) {
            const t = byName.get(table);
            if (t) skip.set(t.oid, parseLsn(lsn));
          }
        }
      } else if (!slot) {
        const creator = new ReplicationConnection(c.url, c.slot);
        try {
          await creator.connect();
          await creator.createSlot(c.slot, { exportSnapshot: false });
        } finally {
          await creator.close();
        }
        slot = await catalog.slotState();
      }
      if (!slot) throw new CdcError('CDC_PROTOCOL', `replication slot "${c.slot}" vanished after it was created`);

      // Restart dedupe: the last appended position of every partition.
      const floors = new Map<string, StreamPosition>();
      const readFloors = async (topic: string, partitions: number): Promise<void> => {
        for (let p = 0; p < partitions; p++) {
          const pos = await lastPosition(this.engine, topic, p);
          if (pos) floors.set(floorKey(topic, p), pos);
        }
      };
      for (const t of prepared.values()) await readFloors(t.topic, t.partitions);
      await readFloors(txTopic, 1);

      const stopError = stopped();
      if (stopError !== null) throw stopError;
      repl = new ReplicationConnection(c.url, c.slot);
      await repl.connect();
      const connection = repl;
      const observer = new WatermarkObserver();
      pipeline = new StreamPipeline({
        source: c.name,
        db: catalog.database,
        writer,
        transactionsTopic: txTopic,
        tables: prepared,
        prepareTable: async (oid) => {
          const found = await catalog.tableByOid(oid);
          if (!found || !(c.schemas ?? []).includes(found.schema)) return null;
          const table = await this.prepare(found);
          await readFloors(table.topic, table.partitions);
          return table;
        },
        floors,
        skipBefore: skip,
        metrics: this.metrics,
        setBlocked: (blocked) => {
          pausedForTable = blocked;
          applyPause();
        },
        confirm: (lsn) => {
          this.confirmed = lsn;
          this.metrics.confirmedLsn(c.name, lsn);
          if (c.confirmDelayMs === 0) connection.sendStatus(lsn);
          else if (confirmTimer === null) {
            // Trailing: the update carries the newest durable position when the timer fires.
            confirmTimer = setTimeout(() => {
              confirmTimer = null;
              connection.sendStatus(pipeline!.confirmedLsn);
            }, c.confirmDelayMs);
          }
        },
        onError: (err) => fail(err),
        observer,
      });
      const pipe = pipeline;
      this.live = { pipeline: pipe, writer, byName, skip, db: catalog.database, progressTopic, observer, stopped };
      if (slot.confirmedFlush !== null) {
        pipe.setConfirmed(slot.confirmedFlush);
        this.confirmed = slot.confirmedFlush;
      }

      const streamDone = connection.stream(c.publication, {
        onData: (buf, offset) => pipe.push(buf, offset),
        onKeepalive: (walEnd, replyRequested) => {
          if (pipe.onKeepalive(walEnd)) {
            this.confirmed = pipe.confirmedLsn;
            this.metrics.confirmedLsn(c.name, pipe.confirmedLsn);
            connection.sendStatus(pipe.confirmedLsn);
          } else if (replyRequested) {
            connection.sendStatus(pipe.confirmedLsn);
          }
        },
      });
      timers.push(setInterval(() => connection.sendStatus(pipe.confirmedLsn), c.statusIntervalMs));
      const lagTick = (): void => {
        catalog.slotLagBytes().then(
          (lag) => {
            if (lag === null) return;
            this.slotLag = lag;
            this.metrics.slotLagBytes(c.name, lag);
          },
          (err: unknown) => {
            // A read cut short by the session ending is not worth a warning.
            if (this.endSession !== null) this.logger.warn({ err }, 'could not read the slot lag');
          },
        );
      };
      timers.push(setInterval(lagTick, c.lagIntervalMs));
      if (c.heartbeatIntervalMs > 0) {
        timers.push(
          setInterval(() => {
            catalog.heartbeat().catch((err: unknown) => {
              if (this.endSession !== null) this.logger.warn({ err }, 'CDC heartbeat failed');
            });
          }, c.heartbeatIntervalMs),
        );
      }
      for (const t of timers) t.unref();
      this.state = 'streaming';
      this.logger.info({ slot: c.slot, publication: c.publication, tables: prepared.size, confirmedLsn: this.confirmed === null ? null : formatLsn(this.confirmed) }, 'CDC streaming');
      lagTick();
      onStreaming();
      const live = this.live;
      this.resumeSnapshot(live).catch((err: unknown) => {
        if (stopped() === null) this.logger.error({ err }, 'could not resume the incremental snapshot');
      });

      await Promise.race([
        streamDone.then(() => {
          if (!this.stopping) throw new CdcError('CDC_CONNECTION', 'PostgreSQL ended the replication stream');
        }),
        ended,
      ]);
      // Stopping: let what is in flight become durable and confirm it before closing.
      connection.pause();
      await writer.idle();
      pipe.onDurable();
      connection.sendStatus(pipe.confirmedLsn);
    } finally {
      if (confirmTimer !== null) clearTimeout(confirmTimer);
      for (const t of timers) clearInterval(t);
      this.endSession = null;
      this.live?.pipeline.close();
      this.live?.observer.fail(sessionError ?? new CdcError('CDC_CONNECTION', 'the CDC session ended'));
      this.live = null;
      await repl?.close();
      // Before the next session reads positions, every append of this one must have settled.
      await writer?.idle();
      await catalog.close();
      closeResolve();
    }
  }

  private async prepare(t: CapturedTable): Promise<PreparedTable> {
    const topic = tableTopic(this.config.topicPrefix, t.schema, t.table);
    const partitions = await this.ensureTopic(topic, this.config.partitions);
    return { ...t, topic, partitions };
  }

  private async ensureTopic(name: string, partitions: number): Promise<number> {
    try {
      return (await this.engine.describeTopic(name)).partitions.length;
    } catch (err) {
      if (!(err instanceof TopicNotFoundError)) throw err;
    }
    try {
      return (await this.engine.createTopic(name, { partitions })).partitions.length;
    } catch (err) {
      if (!(err instanceof TopicExistsError)) throw err;
      return (await this.engine.describeTopic(name)).partitions.length;
    }
  }
}
