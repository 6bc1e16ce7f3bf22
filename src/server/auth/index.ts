/**
 * Access control shared by the HTTP and WebSocket transports: who a caller is (a verified JWT,
 * or ANONYMOUS when auth is off) and what it may do (read/write per topic pattern, admin).
 */
export { createAuthenticator, type AuthConfig, type Authenticator } from './authenticator.js';
export { bindExposure, isLoopbackHost } from './binding.js';
export { AuthUnavailableError, ForbiddenError, InsecureBindError, UnauthorizedError } from './errors.js';
export { ANONYMOUS, NOBODY, authorize, can, requireAdmin } from './principal.js';
export type { Permission, Principal, TopicAction } from './principal.js';
export { matchesTopic, topicPatternSchema } from './topic-pattern.js';
