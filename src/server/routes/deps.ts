import type { Logger } from 'pino';
import type { Engine } from '../../engine/index.js';

/** What route groups are built from. */
export interface RouteDeps {
  readonly engine: Engine;
  readonly logger: Logger;
  readonly autoCreateTopics: boolean;
  readonly maxBatchRecords: number;
  /** True once `close()` was called: readiness turns false. */
  readonly isClosing: () => boolean;
}
