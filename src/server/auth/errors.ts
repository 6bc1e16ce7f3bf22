import { HttpError } from '../errors.js';

/**
 * No credentials, or credentials that do not verify (bad signature, expired, wrong issuer,
 * malformed claims). HTTP: 401 with `WWW-Authenticate: Bearer` (RFC 6750).
 */
export class UnauthorizedError extends HttpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAUTHORIZED', message, { 'www-authenticate': 'Bearer realm="brook"' }, options);
  }
}

/**
 * A verified principal without the permission an operation needs. The message names the action
 * and the topic the caller asked for, and never says whether that topic exists.
 */
export class ForbiddenError extends HttpError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** The key set needed to verify a token could not be fetched. HTTP: 503 with `Retry-After`. */
export class AuthUnavailableError extends HttpError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AUTH_UNAVAILABLE', message, { 'retry-after': '5' }, options);
  }
}

/** `brook start` (or `createServer`) was asked to serve a non-loopback address without auth. */
export class InsecureBindError extends Error {
  readonly code = 'INSECURE_BIND';
  constructor(readonly host: string) {
    super(
      `refusing to listen on ${host} without authentication: anyone who can reach it could read, write and ` +
        `delete every topic. Configure --auth-secret (or BROOK_AUTH_SECRET) or --auth-jwks, ` +
        `or pass --insecure-no-auth if this is really what you want.`,
    );
    this.name = 'InsecureBindError';
  }
}
