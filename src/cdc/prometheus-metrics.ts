/**
 * CDC metrics on a prom-client Registry (the server's, so `GET /metrics` shows them):
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `brook_cdc_events_total` | counter | source, op |
 * | `brook_cdc_transactions_total` | counter | source |
 * | `brook_cdc_commit_to_durable_seconds` | histogram | source (PostgreSQL commit → durable in Brook, two clocks) |
 * | `brook_cdc_receive_to_durable_seconds` | histogram | source (commit received by Brook → durable in Brook) |
 * | `brook_cdc_duplicates_dropped_total` | counter | source (replayed after a restart, dropped by LSN) |
 * | `brook_cdc_slot_lag_bytes` | gauge | source (WAL the slot holds back; alert on it) |
 * | `brook_cdc_confirmed_lsn` | gauge | source (as a number) |
 * | `brook_cdc_errors_total` | counter | source, code |
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CdcMetricsSink } from './metrics.js';

export function createCdcMetrics(registry: Registry): CdcMetricsSink {
  const registers = [registry];
  const events = new Counter({ name: 'brook_cdc_events_total', help: 'Row-change events captured, by source and op.', labelNames: ['source', 'op'], registers });
  const transactions = new Counter({ name: 'brook_cdc_transactions_total', help: 'Transactions captured, by source.', labelNames: ['source'], registers });
  // From half a millisecond (a group commit on an idle disk) to tens of seconds (a paused source).
  const buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  const sinceCommit = new Histogram({
    name: 'brook_cdc_commit_to_durable_seconds',
    help: 'Time from the PostgreSQL commit (its timestamp) until the transaction is durable in Brook; includes clock skew between the hosts.',
    labelNames: ['source'],
    buckets,
    registers,
  });
  const sinceReceived = new Histogram({
    name: 'brook_cdc_receive_to_durable_seconds',
    help: "Time from Brook receiving a transaction's commit until the transaction is durable in Brook (its events and its transactions-topic record, which waits up to transactionsLingerMs).",
    labelNames: ['source'],
    buckets,
    registers,
  });
  const duplicates = new Counter({
    name: 'brook_cdc_duplicates_dropped_total',
    help: 'Events PostgreSQL resent after a restart that were already in the log, dropped by LSN.',
    labelNames: ['source'],
    registers,
  });
  const lag = new Gauge({ name: 'brook_cdc_slot_lag_bytes', help: 'WAL bytes the replication slot holds back (current WAL LSN minus confirmed LSN).', labelNames: ['source'], registers });
  const confirmed = new Gauge({ name: 'brook_cdc_confirmed_lsn', help: 'Last LSN confirmed to PostgreSQL (everything before it is durable in Brook).', labelNames: ['source'], registers });
  const errors = new Counter({ name: 'brook_cdc_errors_total', help: 'CDC session errors, by code.', labelNames: ['source', 'code'], registers });
  return {
    events: (source, op, count) => events.inc({ source, op }, count),
    transaction: (source) => transactions.inc({ source }),
    durable: (source, sinceCommitMs, sinceReceivedMs) => {
      sinceCommit.observe({ source }, Math.max(0, sinceCommitMs) / 1000);
      sinceReceived.observe({ source }, sinceReceivedMs / 1000);
    },
    duplicatesDropped: (source, count) => duplicates.inc({ source }, count),
    slotLagBytes: (source, bytes) => lag.set({ source }, bytes),
    confirmedLsn: (source, lsn) => confirmed.set({ source }, Number(lsn)),
    error: (source, code) => errors.inc({ source, code }),
  };
}
