/** What a CDC source reports; src/server/metrics.ts implements it on the server's registry. */
export interface CdcMetricsSink {
  events(source: string, op: string, count: number): void;
  transaction(source: string): void;
  /**
   * A captured transaction became durable in Brook: milliseconds since PostgreSQL committed it
   * (by PostgreSQL's clock and Brook's, so clock skew between the hosts is included) and since
   * Brook received its commit (Brook's own share, one clock).
   */
  durable(source: string, sinceCommitMs: number, sinceReceivedMs: number): void;
  duplicatesDropped(source: string, count: number): void;
  slotLagBytes(source: string, bytes: number): void;
  confirmedLsn(source: string, lsn: bigint): void;
  error(source: string, code: string): void;
}

export const NO_METRICS: CdcMetricsSink = {
  events: () => undefined,
  transaction: () => undefined,
  durable: () => undefined,
  duplicatesDropped: () => undefined,
  slotLagBytes: () => undefined,
  confirmedLsn: () => undefined,
  error: () => undefined,
};
