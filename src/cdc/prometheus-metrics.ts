/**
 * CDC metrics on a prom-client Registry (the server's, so `GET /metrics` shows them):
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `brook_cdc_events_total` | counter | source, op |
 * | `brook_cdc_transactions_total` | counter | source |
 * | `brook_cdc_duplicates_dropped_total` | counter | source (replayed after a restart, dropped by LSN) |
 * | `brook_cdc_slot_lag_bytes` | gauge | source (WAL the slot holds back; alert on it) |
 * | `brook_cdc_confirmed_lsn` | gauge | source (as a number) |
 * | `brook_cdc_errors_total` | counter | source, code |
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CdcMetricsSink } from './metrics.js';

export function createCdcMetrics(registry: Registry): CdcMetricsSink {
  const registers = [registry];
  const events = new Counter({ name: 'brook_cdc_events_total', help: 'Row-change events captured, by source and op.', labelNames: ['source', 'op'], registers });
  const transactions = new Counter({ name: 'brook_cdc_transactions_total', help: 'Transactions captured, by source.', labelNames: ['source'], registers });
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
    duplicatesDropped: (source, count) => duplicates.inc({ source }, count),
    slotLagBytes: (source, bytes) => lag.set({ source }, bytes),
    confirmedLsn: (source, lsn) => confirmed.set({ source }, Number(lsn)),
    error: (source, code) => errors.inc({ source, code }),
  };
}
