export { CdcSource, type CdcSourceOptions, type CdcSourceState, type CdcSourceStatus } from './cdc-source.js';
export type { SnapshotMode, SnapshotState, SnapshotStatus, TableSnapshotProgress } from './snapshot-status.js';
export {
  assertDistinctSources,
  cdcSourceSchema,
  parseCdcSourceConfig,
  snapshotProgressTopic,
  tableTopic,
  transactionsTopic,
  type CdcSourceConfig,
  type CdcSourceInput,
} from './config.js';
export { CdcError, walLevelError, type CdcErrorCode } from './errors.js';
export { formatLsn, parseLsn, type Lsn } from './lsn.js';
export { NO_METRICS, type CdcMetricsSink } from './metrics.js';
export { UNCHANGED_TOAST_SENTINEL, type ChangeEvent, type Op } from './envelope.js';
export { LSN_HEADER, SEQ_HEADER, SNAPSHOT_HEADER } from './positions.js';
export { createCdcMetrics } from './prometheus-metrics.js';
