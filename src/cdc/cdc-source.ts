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
import { CdcError } from './errors.js';
import { LogWriter } from './log-writer.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';
import { NO_METRICS, type CdcMetricsSink } from './metrics.js';
import { floorKey, lastPosition, type StreamPosition } from './positions.js';
import { ReplicationConnection } from './replication-connection.js';
import { append, readSnapshotState, runSnapshot } from './snapshot.js';
import { StreamPipeline, type PreparedTable } from './stream-pipeline.js';

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
  readonly confirmedLsn: string | null;
  readonly lastError: { readonly code: string; readonly message: string } | null;
}

interface LiveSession {
  readonly pipeline: StreamPipeline;
  readonly writer: LogWriter;
  readonly byName: ReadonlyMap<string, PreparedTable>;
  readonly skip: Map<number, Lsn>;
  readonly db: string;
  readonly progressTopic: string;
  readonly stopped: () => unknown;
}

const BACKOFF_MIN_MS = 200;
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
  /** On-demand snapshots run one at a time. */
  private snapshots: Promise<unknown> = Promise.resolve();

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
      confirmedLsn: this.confirmed === null ? null : formatLsn(this.confirmed),
      lastError: this.lastError === null ? null : { code: this.lastError.code, message: this.lastError.message },
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
    this.state = 'stopped';
  }

  /**
   * Re-reads `tables` (`schema.table`, captured by this source) while streaming: an on-demand
   * snapshot. Streaming holds at a transaction boundary while they are read (a blocking
   * snapshot); each table's topic gets a reset (`op: "t"`, `source.snapshot: true`) and then its
   * rows (`op: "r"`) as of a fresh exported snapshot, and stream events that read already contains
   * are dropped, so replaying the topic still gives the table. Progress is in the log: after a
   * restart it resumes like the initial snapshot.
   */
  snapshot(tables: readonly string[]): Promise<void> {
    const run = this.snapshots.then(() => this.snapshotNow(tables));
    this.snapshots = run.catch(() => undefined);
    return run;
  }

  private async snapshotNow(names: readonly string[]): Promise<void> {
    const live = this.live;
    if (live === null) throw new CdcError('CDC_CONNECTION', `CDC source ${this.config.name} is not streaming (state ${this.state})`);
    const todo = names.map((name) => {
      const t = live.byName.get(name);
      if (!t) throw new CdcError('CDC_TABLE_NOT_FOUND', `table ${name} is not captured by CDC source ${this.config.name}`);
      return t;
    });
    const id = randomUUID();
    await append(this.engine, live.progressTopic, { snapshot: id, status: 'started', tables: [...names], incremental: true });
    await live.pipeline.hold();
    const exporter = new ReplicationConnection(this.config.url, this.config.slot);
    try {
      await exporter.connect();
      const created = await exporter.createSlot(`${this.config.slot.slice(0, 40)}_snap_${process.pid}`, { exportSnapshot: true, temporary: true });
      this.logger.info({ snapshot: id, tables: names, consistentPoint: formatLsn(created.consistentPoint) }, 'CDC on-demand snapshot started');
      await runSnapshot({
        url: this.config.url,
        snapshotName: created.snapshotName!,
        consistentPoint: created.consistentPoint,
        snapshotId: id,
        tables: todo,
        db: live.db,
        source: this.config.name,
        chunkRows: this.config.snapshotChunkRows,
        writer: live.writer,
        engine: this.engine,
        progressTopic: live.progressTopic,
        metrics: this.metrics,
        failed: live.stopped,
        resetFirst: true,
      });
      for (const t of todo) live.skip.set(t.oid, created.consistentPoint);
      await append(this.engine, live.progressTopic, { snapshot: id, status: 'complete', skip: {} });
      this.logger.info({ snapshot: id }, 'CDC on-demand snapshot complete');
    } finally {
      await exporter.close();
      live.pipeline.release();
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
      });
      const pipe = pipeline;
      this.live = { pipeline: pipe, writer, byName, skip, db: catalog.database, progressTopic, stopped };
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
            if (lag !== null) this.metrics.slotLagBytes(c.name, lag);
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
