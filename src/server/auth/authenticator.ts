/**
 * Bearer-token authentication with JWTs (jose): HS256 with a shared secret and/or RS256 with
 * public keys from a JWKS (a document given inline, or a URL fetched and cached by jose).
 *
 * Claims Brook reads (others are ignored):
 *
 * ```json
 * { "sub": "checkout-service",
 *   "permissions": [{ "topics": "orders.*", "actions": ["read", "write"] }],
 *   "admin": false, "tenant": "acme", "tier": "premium", "exp": 1732400000,
 *   "channels": [{ "match": "chat:*", "allow": ["subscribe", "publish", "presence", "history"] }],
 *   "info": { "name": "Ada" } }
 * ```
 * (`channels` and `info`: docs/channels.md, "Capabilities".)
 */
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import {
  DEFAULT_CLOCK_TOLERANCE_SECONDS,
  JWKS_FETCH_TIMEOUT_MS,
  MAX_TOKEN_BYTES,
  MAX_TOKEN_PERMISSIONS,
  MIN_AUTH_SECRET_BYTES,
} from '../defaults.js';
import { AuthUnavailableError, UnauthorizedError } from './errors.js';
import { ANONYMOUS, type Principal } from './principal.js';
import { isLoopbackHost } from './binding.js';
import { topicPatternSchema } from './topic-pattern.js';
import { CHANNEL_ACTIONS, channelDefaults, type ChannelAction } from '../../channels/index.js';

/** Largest presence `info` claim, serialized. */
const MAX_INFO_BYTES = channelDefaults.MAX_INFO_BYTES;

export interface AuthConfig {
  /** HS256 shared secret, at least 32 bytes. */
  readonly secret?: string | Uint8Array;
  /**
   * RS256 public keys: a JWKS document, or the URL of one (https; plain http only on a loopback
   * address). Tokens are matched to keys by `kid`.
   */
  readonly jwks?: JSONWebKeySet | URL;
  /** When set, tokens must carry this `iss`. */
  readonly issuer?: string;
  /** When set, tokens must carry this `aud`. */
  readonly audience?: string;
  /** Leeway for `exp` and `nbf`. @defaultValue 5 */
  readonly clockToleranceSeconds?: number;
  /** Clock for `exp` and `nbf`, in ms since the epoch (tests inject one). @defaultValue Date.now */
  readonly now?: () => number;
}

export interface Authenticator {
  /** False when neither a secret nor a JWKS is configured: every caller is ANONYMOUS. */
  readonly enabled: boolean;
  /**
   * Verifies a credential and returns who it belongs to. Takes an `Authorization` header value
   * (`Bearer <jwt>`) or a bare token (a WebSocket `?token=`). Throws UnauthorizedError when the
   * credential is missing or does not verify, AuthUnavailableError when a remote key set cannot
   * be fetched. With auth off, returns ANONYMOUS whatever it is given.
   *
   * @example
   * const auth = createAuthenticator({ secret: process.env.BROOK_AUTH_SECRET });
   * const principal = await auth.authenticate(req.headers.authorization ?? url.searchParams.get('token'));
   * authorize(principal, 'read', 'orders');
   */
  authenticate(credential: string | null | undefined): Promise<Principal>;
}

const claimsSchema = z.object({
  sub: z.string().max(256).optional(),
  admin: z.boolean().optional(),
  permissions: z
    .array(
      z.strictObject({
        topics: topicPatternSchema,
        actions: z.array(z.enum(['read', 'write'])).max(2),
      }),
    )
    .max(MAX_TOKEN_PERMISSIONS)
    .optional(),
  tenant: z.string().min(1).max(128).optional(),
  tier: z.string().min(1).max(64).optional(),
  // Channel capabilities and presence info (docs/channels.md, "Capabilities").
  channels: z
    .array(
      z.strictObject({
        match: z.string().min(1).max(256).regex(/^[A-Za-z0-9._:#,@=~*-]+$/, 'a channel pattern uses channel characters and *'),
        allow: z.array(z.enum(CHANNEL_ACTIONS as [ChannelAction, ...ChannelAction[]])).max(4),
      }),
    )
    .max(MAX_TOKEN_PERMISSIONS)
    .optional(),
  info: z.unknown().optional(),
  exp: z.number().optional(),
});

/** Jose failures that mean "this token is not good", as opposed to "keys could not be had". */
const REFUSED = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JWK_INVALID',
]);

/**
 * Builds an authenticator from `config`; with neither `secret` nor `jwks` auth is off. Throws
 * at once on a configuration that could not work (a short secret, an http JWKS URL on a
 * non-loopback host, a malformed JWKS document).
 */
export function createAuthenticator(config: AuthConfig = {}): Authenticator {
  const secret = typeof config.secret === 'string' ? new TextEncoder().encode(config.secret) : config.secret;
  if (secret !== undefined && secret.byteLength < MIN_AUTH_SECRET_BYTES) {
    throw new Error(`the auth secret must be at least ${MIN_AUTH_SECRET_BYTES} bytes long (got ${secret.byteLength})`);
  }
  const remote = config.jwks instanceof URL;
  let keySet: JWTVerifyGetKey | undefined;
  if (config.jwks instanceof URL) {
    const url = config.jwks;
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
      throw new Error(`the JWKS URL must use https (plain http is only allowed on loopback), got ${url.href}`);
    }
    keySet = createRemoteJWKSet(url, { timeoutDuration: JWKS_FETCH_TIMEOUT_MS });
  } else if (config.jwks !== undefined) {
    keySet = createLocalJWKSet(config.jwks);
  }
  if (secret === undefined && keySet === undefined) {
    return { enabled: false, authenticate: () => Promise.resolve(ANONYMOUS) };
  }

  const algorithms = [...(secret ? ['HS256'] : []), ...(keySet ? ['RS256'] : [])];
  const getKey: JWTVerifyGetKey = (header, token) => {
    // The algorithm allow-list has already refused anything else; HS256 only with a secret.
    if (header.alg === 'HS256' && secret) return secret;
    if (keySet) return keySet(header, token);
    throw new errors.JOSEAlgNotAllowed(`"alg" (Algorithm) Header Parameter value not allowed`);
  };
  const now = config.now ?? Date.now;
  const options = {
    algorithms,
    clockTolerance: config.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
    ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
    ...(config.audience === undefined ? {} : { audience: config.audience }),
  };

  return {
    enabled: true,
    async authenticate(credential) {
      const token = bearerToken(credential);
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, getKey, { ...options, currentDate: new Date(now()) }));
      } catch (err) {
        if (err instanceof errors.JOSEError && REFUSED.has(err.code)) {
          throw new UnauthorizedError(refusal(err), { cause: err });
        }
        if (remote) throw new AuthUnavailableError('the key set to verify tokens cannot be fetched; retry later', { cause: err });
        throw err;
      }
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) {
        const issue = claims.error.issues[0];
        const where = issue ? issue.path.map(String).join('.') : '';
        throw new UnauthorizedError(`token claims are malformed${where === '' ? '' : ` (${where})`}`, { cause: claims.error });
      }
      const c = claims.data;
      const info = c.info === undefined ? undefined : JSON.stringify(c.info);
      if (info !== undefined && Buffer.byteLength(info) > MAX_INFO_BYTES) {
        throw new UnauthorizedError(`token claims are malformed (info is larger than ${MAX_INFO_BYTES} bytes)`);
      }
      return {
        subject: c.sub ?? '',
        anonymous: false,
        admin: c.admin ?? false,
        permissions: c.permissions ?? [],
        ...(c.tenant === undefined ? {} : { tenant: c.tenant }),
        ...(c.tier === undefined ? {} : { tier: c.tier }),
        ...(c.channels === undefined ? {} : { channels: c.channels }),
        ...(info === undefined ? {} : { info }),
        // With the same leeway the handshake allowed, on the same clock.
        ...(c.exp === undefined ? {} : { expiresAt: (c.exp + options.clockTolerance) * 1000 }),
      };
    },
  };
}

/** The token in `Bearer <token>`, or a bare token; anything else is refused. */
function bearerToken(credential: string | null | undefined): string {
  if (credential == null || credential.trim() === '') throw new UnauthorizedError('missing bearer token');
  if (credential.length > MAX_TOKEN_BYTES) throw new UnauthorizedError('token is too long');
  const trimmed = credential.trim();
  const space = trimmed.indexOf(' ');
  if (space === -1) return trimmed;
  if (trimmed.slice(0, space).toLowerCase() !== 'bearer') {
    throw new UnauthorizedError('unsupported authorization scheme; use Bearer');
  }
  return trimmed.slice(space + 1).trim();
}

function refusal(err: InstanceType<typeof errors.JOSEError>): string {
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return 'token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `token claim check failed: ${err.message}`;
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'token algorithm is not accepted';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no key matches the token';
    default:
      return 'token is invalid';
  }
}
