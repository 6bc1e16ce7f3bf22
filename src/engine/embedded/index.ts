export { EmbeddedEngine, type EmbeddedEngineOptions } from './embedded-engine.js';
