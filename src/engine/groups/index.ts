/**
 * Consumer groups, independent of the storage engine: membership, incremental assignment with a
 * revocation handshake, and committed offsets written through to an engine-provided store.
 */
export { GroupCoordinator } from './coordinator.js';
export type { GroupCoordinatorOptions } from './coordinator-options.js';
export type { GroupOffsetRecord, OffsetKey, OffsetStore } from './offset-store.js';
