import type { Logger } from 'pino';
import type { ReadBudget, TopicAutoCreator } from '../../broker/index.js';
import type { Engine } from '../../engine/index.js';
import type { QueueService } from '../../queues/index.js';
import type { Metrics } from '../metrics.js';
import type { InFlightBytes, ProduceQuotas } from '../quota/index.js';

/** What route groups are built from. */
export interface RouteDeps {
  readonly engine: Engine;
  /** Work queues (docs/queues.md). */
  readonly queues: QueueService;
  readonly logger: Logger;
  readonly autoCreateTopics: boolean;
  /** Creates unknown topics on produce (one for HTTP and WebSocket); null when auto-creation is off. */
  readonly autoCreate: TopicAutoCreator | null;
  readonly maxBatchRecords: number;
  /** Largest request body; what a produce without Content-Length reserves of `inFlight`. */
  readonly maxBodyBytes: number;
  readonly metrics: Metrics;
  readonly quotas: ProduceQuotas;
  readonly inFlight: InFlightBytes;
  /** Bytes reads may hold at once across HTTP and WebSocket (see ReadBudget). */
  readonly readBudget: ReadBudget;
  /** True once `close()` was called: readiness turns false. */
  readonly isClosing: () => boolean;
}
