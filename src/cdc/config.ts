/**
 * A CDC source's settings, parsed with zod at the edge (CLI flags, config file). Defaults live
 * here (docs/cdc.md, "Configuration").
 */
import { z } from 'zod';
import { CdcError } from './errors.js';

const IDENT = /^[a-z_][a-z0-9_$]{0,62}$/;
const QUALIFIED = /^[^.\s]+\.[^.\s]+$/;

export const cdcSourceSchema = z.strictObject({
  /** Names the source in logs and metrics. @defaultValue the slot name */
  name: z.string().min(1).max(64).optional(),
  /** `postgres://user@host:port/db`. */
  url: z.string().min(1),
  /** `schema.table` names to capture. */
  tables: z.array(z.string().regex(QUALIFIED, 'use schema.table')).optional(),
  /** Capture every table of these schemas (`FOR TABLES IN SCHEMA`, new tables included). */
  schemas: z.array(z.string().min(1)).optional(),
  /** @defaultValue 'brook_cdc' */
  slot: z.string().regex(IDENT, 'slot names use lower-case letters, digits and _').default('brook_cdc'),
  /** @defaultValue 'brook_cdc' */
  publication: z.string().min(1).max(63).default('brook_cdc'),
  /** Topics are `<prefix>.<schema>.<table>`, plus `<prefix>.transactions`. @defaultValue 'cdc' */
  topicPrefix: z.string().regex(/^[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,100}$/).default('cdc'),
  /** Partitions of each table topic created by the source. @defaultValue 1 */
  partitions: z.number().int().min(1).max(1024).default(1),
  /** Take an initial snapshot (op "r") when the slot is created. @defaultValue true */
  snapshot: z.boolean().default(true),
  /** Rows per snapshot query. @defaultValue 10_000 */
  snapshotChunkRows: z.number().int().min(1).max(1_000_000).default(10_000),
  /** Events not yet durable held in memory; above it the replication socket is paused. @defaultValue 32 MiB */
  maxBufferedBytes: z.number().int().min(64 * 1024).default(32 * 1024 * 1024),
  /** Records per engine append. @defaultValue 4096 */
  maxBatchRecords: z.number().int().min(1).max(100_000).default(4096),
  /**
   * Durable progress is confirmed to PostgreSQL at most this often (one standby status update for
   * every transaction made durable in the meantime; 0 = after each). Confirming later is always
   * safe — what PostgreSQL resends after a restart is dropped by LSN — and spares one socket write
   * per transaction in Brook and one wake-up in the walsender. @defaultValue 10
   */
  confirmDelayMs: z.number().int().min(0).max(1000).default(10),
  /**
   * The transactions topic is appended at most this often, its records batched meanwhile (0 =
   * with each transaction, like the table topics). Nobody waits on it record by record, and an
   * append of its own per transaction doubled the fsyncs of a small-transaction stream: at
   * 10,000 changes/s in 10-row transactions, commit → browser p99 went from 4.9–5.5 to 3.9–4.3 ms
   * (docs/cdc.md). A transaction is confirmed to PostgreSQL only once its record is durable, so
   * this delays the confirm by as much. @defaultValue 5
   */
  transactionsLingerMs: z.number().int().min(0).max(1000).default(5),
  /** Standby status updates at least this often. @defaultValue 1000 */
  statusIntervalMs: z.number().int().min(10).default(1000),
  /** pg_logical_emit_message heartbeat period, 0 = off. @defaultValue 10_000 */
  heartbeatIntervalMs: z.number().int().min(0).default(10_000),
  /**
   * How long a start waits for a slot that is still active (the walsender of a Brook that just
   * crashed or lost its connection can outlive it briefly) before reporting CDC_SLOT_IN_USE.
   * @defaultValue 10_000
   */
  slotBusyWaitMs: z.number().int().min(0).default(10_000),
  /** How often slot lag is read. @defaultValue 5000 */
  lagIntervalMs: z.number().int().min(100).default(5000),
});

export type CdcSourceInput = z.input<typeof cdcSourceSchema>;
export type CdcSourceConfig = z.output<typeof cdcSourceSchema> & { readonly name: string };

/** Validates one source's settings; throws CDC_CONFIG_INVALID with every problem listed. */
export function parseCdcSourceConfig(input: unknown): CdcSourceConfig {
  const parsed = cdcSourceSchema.safeParse(input);
  if (!parsed.success) throw new CdcError('CDC_CONFIG_INVALID', `invalid CDC source settings:\n${z.prettifyError(parsed.error)}`);
  const config = parsed.data;
  if ((config.tables?.length ?? 0) === 0 && (config.schemas?.length ?? 0) === 0) {
    throw new CdcError('CDC_CONFIG_INVALID', 'a CDC source needs tables (schema.table) or schemas to capture');
  }
  try {
    new URL(config.url);
  } catch (err) {
    throw new CdcError('CDC_CONFIG_INVALID', `CDC url is not a URL: ${JSON.stringify(config.url)}`, { cause: err });
  }
  return { ...config, name: config.name ?? config.slot };
}

/** Several sources must not share a slot or topics (their dedupe positions would mix). */
export function assertDistinctSources(sources: readonly CdcSourceConfig[]): void {
  const seen = new Map<string, string>();
  for (const s of sources) {
    for (const [kind, value] of [
      ['name', s.name],
      ['topic prefix', s.topicPrefix],
      ['slot', `${s.url}#${s.slot}`],
    ] as const) {
      const key = `${kind}:${value}`;
      if (seen.has(key)) throw new CdcError('CDC_CONFIG_INVALID', `two CDC sources share the ${kind} ${JSON.stringify(value.split('#').pop())}`);
      seen.set(key, s.name);
    }
  }
}

/** Topic names allow [a-zA-Z0-9._-]; other characters of schema or table names become `_`. */
export function tableTopic(prefix: string, schema: string, table: string): string {
  const clean = (s: string): string => s.replace(/[^a-zA-Z0-9_-]/g, '_');
  return `${prefix}.${clean(schema)}.${clean(table)}`.slice(0, 249);
}

export function transactionsTopic(prefix: string): string {
  return `${prefix}.transactions`;
}

export function snapshotProgressTopic(prefix: string): string {
  return `${prefix}.snapshot-progress`;
}
