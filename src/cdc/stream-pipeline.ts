/**
 * Decoded pgoutput messages → records for the LogWriter, and the confirmed LSN.
 *
 * Synchronous per message (no promise per change). A Relation for a table the source has not
 * prepared yet (schema mode: a table created after the start) needs catalog reads and a topic:
 * the pipeline then blocks, asks the caller to pause the socket, queues the messages still
 * arriving from the current socket chunk (bounded by it), and drains them once ready.
 */
import { partitionForKey } from '../engine/index.js';
import type { CapturedTable } from './catalog.js';
import { TableSchema, type Op } from './envelope.js';
import { CdcError } from './errors.js';
import type { DurabilityWaiter, LogWriter } from './log-writer.js';
import { formatLsn, type Lsn } from './lsn.js';
import { Fifo } from '../lib/fifo.js';
import type { CdcMetricsSink } from './metrics.js';
import { decodePgoutput, PgoutputDecodeError, UNCHANGED_TOAST, type PgoutputMessage, type Tuple } from './pgoutput-decoder.js';
import { atOrBefore, floorKey, LSN_HEADER, SEQ_HEADER, type StreamPosition } from './positions.js';
import type { TypeInfo } from './type-mapping.js';

/** A prepared table: its topic exists and its partition count is known. */
export interface PreparedTable extends CapturedTable {
  readonly topic: string;
  readonly partitions: number;
}

export interface StreamPipelineOptions {
  readonly source: string;
  readonly db: string;
  readonly writer: LogWriter;
  readonly transactionsTopic: string;
  readonly tables: Map<number, PreparedTable>;
  /** Prepares a table that appeared in the stream; null when it is not captured. */
  readonly prepareTable: (oid: number) => Promise<PreparedTable | null>;
  /** Last appended position per `floorKey(topic, partition)`; entries are removed once passed. */
  readonly floors: Map<string, StreamPosition>;
  /** Tables re-snapshotted at a later point: their events committed before it are in the snapshot. */
  readonly skipBefore: Map<number, Lsn>;
  readonly metrics: CdcMetricsSink;
  readonly setBlocked: (blocked: boolean) => void;
  readonly confirm: (lsn: Lsn) => void;
  readonly onError: (err: unknown) => void;
  /** Sees logical messages and the keys of changes (incremental snapshots' watermark windows). */
  readonly observer?: StreamObserver;
}

/**
 * A side channel out of the pipeline, called synchronously in stream order. The incremental
 * snapshot (incremental-snapshot.ts) implements it; the pipeline knows nothing of snapshots.
 */
export interface StreamObserver {
  /** A change of a captured table: its key as JSON text, `null` for a TRUNCATE (every row). */
  change(oid: number, keyText: string | null): void;
  /**
   * A logical message (`pg_logical_emit_message`). Inside a transaction, `tx` is its position
   * and a waiter the observer may hang records on: the transaction is confirmed to PostgreSQL
   * only once they are durable too.
   */
  message(prefix: string, content: Uint8Array, tx: ObservedTransaction | null): void;
}

export interface ObservedTransaction {
  readonly waiter: DurabilityWaiter;
  readonly lsnText: string;
  /** The next free `seq` of the transaction. */
  readonly seq: number;
}

interface OpenTransaction extends DurabilityWaiter {
  readonly xid: number;
  readonly commitLsn: Lsn;
  readonly lsnText: string;
  readonly commitTime: number;
  seq: number;
  endLsn: Lsn;
  committed: boolean;
  /** When the commit message arrived (performance.now()), for the receive → durable metric. */
  receivedAt: number;
  readonly counts: Map<string, number>;
  /** `source` JSON up to `seq`, per table, built once per transaction. */
  readonly sourcePrefixes: Map<number, string>;
  /** Events per op, reported to metrics once per transaction rather than per event. */
  readonly ops: Record<Op, number>;
}

const MAX_QUEUED_WHILE_BLOCKED = 100_000;

export class StreamPipeline {
  private readonly schemas = new Map<number, TableSchema>();
  private readonly types = new Map<number, TypeInfo>();
  /** Oids of relations in the stream that are not captured (a publication shared with other tables). */
  private readonly ignored = new Set<number>();
  private tx: OpenTransaction | null = null;
  /** Committed transactions not yet durable, in commit order. */
  private readonly fifo = new Fifo<OpenTransaction>();
  private confirmed: Lsn = 0n;
  private blocked = false;
  private queued: Buffer[] = [];
  private failed = false;
  private holdRequested: (() => void) | null = null;

  constructor(private readonly o: StreamPipelineOptions) {}

  get confirmedLsn(): Lsn {
    return this.confirmed;
  }

  /** Nothing received is waiting to become durable. */
  get drained(): boolean {
    return this.tx === null && this.fifo.length === 0 && !this.blocked;
  }

  setConfirmed(lsn: Lsn): void {
    this.confirmed = lsn;
  }

  /** One XLogData payload (`buf[offset]` is the pgoutput message type). */
  push(buf: Buffer, offset: number): void {
    if (this.failed) return;
    if (this.blocked) {
      if (this.queued.length >= MAX_QUEUED_WHILE_BLOCKED) {
        this.fail(new CdcError('CDC_PROTOCOL', 'too many replication messages arrived while a new table was being prepared'));
        return;
      }
      this.queued.push(Buffer.from(buf.subarray(offset)));
      return;
    }
    let msg: PgoutputMessage;
    try {
      msg = decodePgoutput(buf, offset);
    } catch (err) {
      this.fail(err instanceof PgoutputDecodeError ? new CdcError('CDC_PROTOCOL', err.message, { cause: err }) : err);
      return;
    }
    try {
      this.handle(msg);
    } catch (err) {
      this.fail(err);
    }
  }

  /** After appends became durable: confirm the newest transaction with all before it durable. */
  onDurable(): void {
    let advanced = false;
    let now = 0;
    // Durable transactions leave the FIFO at once (their slots cleared): kept until a periodic
    // compaction, a thousand of them with their maps outlived young-generation GC and were
    // promoted, which made old-space collections pause the server every second at 10k changes/s.
    for (let head = this.fifo.peek(); head !== undefined && head.outstanding === 0; head = this.fifo.peek()) {
      this.fifo.shift();
      if (head.counts.size > 0) {
        if (now === 0) now = performance.now();
        this.o.metrics.durable(this.o.source, Date.now() - head.commitTime, now - head.receivedAt);
      }
      if (head.endLsn > this.confirmed) this.confirmed = head.endLsn;
      advanced = true;
    }
    if (advanced) this.o.confirm(this.confirmed);
  }

  /** A keepalive's walEnd can be confirmed when nothing received is still pending. */
  onKeepalive(walEnd: Lsn): boolean {
    if (this.drained && walEnd > this.confirmed) {
      this.confirmed = walEnd;
      return true;
    }
    return false;
  }

  /**
   * Stops processing at the next transaction boundary: the caller's socket is paused and what
   * already arrived waits in order. Resolves once held (used by on-demand snapshots).
   */
  hold(): Promise<void> {
    return new Promise((resolve) => {
      const held = (): void => {
        this.block();
        resolve();
      };
      if (this.tx === null && !this.blocked) held();
      else this.holdRequested = held;
    });
  }

  /** Goes on after `hold()`. */
  release(): void {
    if (!this.failed) this.unblock();
  }

  /** The session is over: nothing more is processed or written. */
  close(): void {
    this.failed = true;
  }

  private block(): void {
    this.blocked = true;
    this.o.setBlocked(true);
  }

  /** Drains what queued while blocked, in order, unless something blocks again. */
  private unblock(): void {
    this.blocked = false;
    const queued = this.queued;
    this.queued = [];
    for (let i = 0; i < queued.length; i++) {
      if (this.blocked) {
        this.queued = queued.slice(i).concat(this.queued);
        return;
      }
      this.push(queued[i]!, 0);
    }
    if (this.blocked) return;
    const held = this.holdRequested;
    if (held !== null && this.tx === null) {
      this.holdRequested = null;
      held();
      return;
    }
    this.o.setBlocked(false);
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.o.onError(err);
  }

  private handle(msg: PgoutputMessage): void {
    switch (msg.tag) {
      case 'begin':
        this.tx = {
          xid: msg.xid,
          commitLsn: msg.commitLsn,
          lsnText: formatLsn(msg.commitLsn),
          commitTime: msg.commitTime,
          seq: 0,
          endLsn: 0n,
          committed: false,
          receivedAt: 0,
          outstanding: 0,
          counts: new Map(),
          ops: { c: 0, u: 0, d: 0, r: 0, t: 0 },
          sourcePrefixes: new Map(),
        };
        return;
      case 'commit':
        this.commit(msg.endLsn);
        return;
      case 'relation':
        this.relation(msg);
        return;
      case 'type':
        this.types.set(msg.oid, { name: msg.name });
        return;
      case 'insert': {
        const schema = this.schemaOf(msg.relation);
        if (schema) this.emit(schema, 'c', null, msg.after, null);
        return;
      }
      case 'update': {
        const schema = this.schemaOf(msg.relation);
        if (!schema) return;
        const before = msg.before;
        if (before && msg.kind === 'K' && !schema.sameKey(before, msg.after)) {
          // The primary key changed: a delete of the old key and a create of the new one.
          this.emit(schema, 'd', before, null, 'K');
          this.emit(schema, 'c', null, msg.after, null);
        } else if (before && msg.kind === 'O' && !schema.sameKey(before, msg.after)) {
          this.emit(schema, 'd', before, null, 'O');
          this.emit(schema, 'c', null, fillToast(msg.after, before), null);
        } else {
          this.emit(schema, 'u', msg.kind === 'O' ? before : null, before && msg.kind === 'O' ? fillToast(msg.after, before) : msg.after, msg.kind);
        }
        return;
      }
      case 'delete': {
        const schema = this.schemaOf(msg.relation);
        if (schema) this.emit(schema, 'd', msg.before, null, msg.kind);
        return;
      }
      case 'truncate':
        for (const oid of msg.relations) {
          const schema = this.schemaOf(oid);
          if (schema) this.emit(schema, 't', null, null, null);
        }
        return;
      case 'message':
        this.o.observer?.message(msg.prefix, msg.content, this.tx === null ? null : { waiter: this.tx, lsnText: this.tx.lsnText, seq: this.tx.seq });
        return;
      case 'origin':
        return;
      default: {
        const never: never = msg;
        throw new CdcError('CDC_PROTOCOL', `unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  private schemaOf(oid: number): TableSchema | null {
    if (this.ignored.has(oid)) return null;
    const schema = this.schemas.get(oid);
    if (!schema) throw new CdcError('CDC_PROTOCOL', `change for relation ${oid} before its Relation message`);
    return schema;
  }

  private relation(msg: Extract<PgoutputMessage, { tag: 'relation' }>): void {
    const table = this.o.tables.get(msg.oid);
    if (table) {
      this.schemas.set(msg.oid, new TableSchema(msg.oid, msg.schema, msg.table, table.topic, msg.replicaIdentity, msg.columns, table.primaryKey, this.types));
      return;
    }
    // A table this source has not prepared: look it up (and create its topic) before going on.
    this.block();
    this.o.prepareTable(msg.oid).then(
      (prepared) => {
        if (prepared) {
          this.o.tables.set(msg.oid, prepared);
          this.schemas.set(msg.oid, new TableSchema(msg.oid, msg.schema, msg.table, prepared.topic, msg.replicaIdentity, msg.columns, prepared.primaryKey, this.types));
        } else {
          this.ignored.add(msg.oid);
        }
        this.unblock();
      },
      (err: unknown) => this.fail(err),
    );
  }

  private emit(schema: TableSchema, op: Op, before: Tuple | null, after: Tuple | null, beforeKind: 'K' | 'O' | null): void {
    const tx = this.tx;
    if (!tx) throw new CdcError('CDC_PROTOCOL', 'change outside a transaction');
    const seq = tx.seq++;
    const name = `${schema.schema}.${schema.table}`;
    tx.counts.set(name, (tx.counts.get(name) ?? 0) + 1);
    const skip = this.o.skipBefore.get(schema.oid);
    if (skip !== undefined) {
      if (tx.commitLsn < skip) return;
      this.o.skipBefore.delete(schema.oid);
    }
    const table = this.o.tables.get(schema.oid)!;
    const keyTuple = after ?? before;
    const keyText = op === 't' || keyTuple === null ? null : schema.keyJson(keyTuple);
    this.o.observer?.change(schema.oid, keyText);
    const key = keyText === null ? null : Buffer.from(keyText);
    const unchanged: string[] = [];
    // The envelope as text in one pass (docs/cdc.md): same bytes as JSON.stringify of a ChangeEvent.
    const beforeJson = before === null ? 'null' : schema.rowJson(before, undefined, beforeKind === 'K' || (beforeKind === null && op === 'd'));
    const afterJson = after === null ? 'null' : schema.rowJson(after, unchanged);
    let sourcePrefix = tx.sourcePrefixes.get(schema.oid);
    if (sourcePrefix === undefined) tx.sourcePrefixes.set(schema.oid, (sourcePrefix = schema.sourcePrefix(this.o.db, tx.lsnText, tx.xid)));
    const value = Buffer.from(
      `{"before":${beforeJson},"after":${afterJson},"op":"${op}","source":${sourcePrefix}${seq},"ts_ms":${tx.commitTime},"snapshot":false},"ts_ms":${Date.now()}` +
        `${unchanged.length > 0 ? `,"unchanged_toast":${JSON.stringify(unchanged)}` : ''}}`,
    );
    const headers = { [LSN_HEADER]: tx.lsnText, [SEQ_HEADER]: String(seq) };
    if (op === 't') {
      for (let p = 0; p < table.partitions; p++) this.write(table.topic, p, { key: null, value, headers }, tx, seq);
    } else {
      this.write(table.topic, key === null ? 0 : partitionForKey(key, table.partitions), { key, value, headers }, tx, seq);
    }
    tx.ops[op]++;
  }

  private write(topic: string, partition: number, record: { key: Buffer | null; value: Buffer; headers: Record<string, string> }, tx: OpenTransaction, seq: number): void {
    if (this.o.floors.size > 0) {
      const id = floorKey(topic, partition);
      const floor = this.o.floors.get(id);
      if (floor) {
        if (atOrBefore(tx.commitLsn, seq, floor)) {
          this.o.metrics.duplicatesDropped(this.o.source, 1);
          return;
        }
        this.o.floors.delete(id);
      }
    }
    this.o.writer.write(topic, partition, record, tx);
  }

  private commit(endLsn: Lsn): void {
    const tx = this.tx;
    if (!tx) throw new CdcError('CDC_PROTOCOL', 'commit outside a transaction');
    this.tx = null;
    tx.endLsn = endLsn;
    tx.committed = true;
    tx.receivedAt = performance.now();
    if (tx.counts.size > 0) {
      const value = Buffer.from(
        JSON.stringify({
          status: 'END',
          id: String(tx.xid),
          lsn: tx.lsnText,
          event_count: tx.seq,
          data_collections: [...tx.counts].map(([name, count]) => ({ data_collection: name, event_count: count })),
          ts_ms: tx.commitTime,
        }),
      );
      this.write(this.o.transactionsTopic, 0, { key: null, value, headers: { [LSN_HEADER]: tx.lsnText, [SEQ_HEADER]: String(tx.seq) } }, tx, tx.seq);
      this.o.metrics.transaction(this.o.source);
      for (const op of ['c', 'u', 'd', 't'] as const) if (tx.ops[op] > 0) this.o.metrics.events(this.o.source, op, tx.ops[op]);
    }
    this.fifo.push(tx);
    this.onDurable();
    const held = this.holdRequested;
    if (held !== null && !this.blocked) {
      this.holdRequested = null;
      held();
    }
  }
}

/** With REPLICA IDENTITY FULL the old row may carry a TOASTed value the new tuple left out. */
function fillToast(after: Tuple, before: Tuple): Tuple {
  let out: Tuple | null = null;
  for (let i = 0; i < after.length; i++) {
    const old = before[i];
    if (after[i] === UNCHANGED_TOAST && old !== UNCHANGED_TOAST && old !== undefined) {
      out ??= after.slice();
      out[i] = old;
    }
  }
  return out ?? after;
}
