/**
 * Who a request (or a WebSocket session) acts as, and what it may do. Permissions come from the
 * token; the checks here are pure functions so every transport answers alike.
 */
import type { ChannelCapability } from '../../channels/index.js';
import { ForbiddenError } from './errors.js';
import { matchesTopic } from './topic-pattern.js';

/** What a permission grants on the topics it matches. */
export type TopicAction = 'read' | 'write';

export interface Permission {
  /** A topic pattern (`orders.*`, `*`); see ./topic-pattern.ts. */
  readonly topics: string;
  readonly actions: readonly TopicAction[];
}

export interface Principal {
  /** The token's `sub`; empty for the anonymous principal or a token without one. */
  readonly subject: string;
  /** True when auth is off (or on a public route): there is no verified identity. */
  readonly anonymous: boolean;
  /** Topic management and group administration; grants no access to records by itself. */
  readonly admin: boolean;
  readonly permissions: readonly Permission[];
  /** Quota key shared by every principal of one tenant. */
  readonly tenant?: string;
  /** Quota tier (e.g. `regular`, `premium`). */
  readonly tier?: string;
  /** Channel capabilities (docs/channels.md); none when absent. */
  readonly channels?: readonly ChannelCapability[];
  /** Presence info from the token, as JSON text. */
  readonly info?: string;
  /**
   * When the token stops being valid: its `exp` plus the verification leeway, in ms since the
   * epoch. Long-lived connections (`/v1/ws`, `/v1/realtime`) are closed then.
   */
  readonly expiresAt?: number;
}

/** Every caller when auth is off: all permissions on every topic, and admin. */
export const ANONYMOUS: Principal = Object.freeze({
  subject: '',
  anonymous: true,
  admin: true,
  permissions: Object.freeze([
    Object.freeze({ topics: '*', actions: Object.freeze(['read', 'write'] as const) }),
    Object.freeze({ topics: '__*', actions: Object.freeze(['read', 'write'] as const) }),
  ]),
});

/** The caller of a public route (health probes) when auth is on: may do nothing. */
export const NOBODY: Principal = Object.freeze({ subject: '', anonymous: true, admin: false, permissions: Object.freeze([]) });

/** Whether `principal` may `action` on `topic`. For filtering lists; use `authorize` to refuse. */
export function can(principal: Principal, action: TopicAction, topic: string): boolean {
  for (const permission of principal.permissions) {
    if (permission.actions.includes(action) && matchesTopic(permission.topics, topic)) return true;
  }
  return false;
}

/**
 * Throws ForbiddenError unless `principal` may `action` on `topic`. Call it before anything
 * looks the topic up, so an unknown topic and a known one are refused alike.
 *
 * @example
 * const principal = await authenticator.authenticate(req.headers.authorization);
 * authorize(principal, 'write', 'orders.eu');
 */
export function authorize(principal: Principal, action: TopicAction, topic: string): void {
  if (!can(principal, action, topic)) {
    throw new ForbiddenError(`not allowed to ${action} topic ${JSON.stringify(topic)}`);
  }
}

/** Throws ForbiddenError unless `principal` is an admin; `what` names the operation. */
export function requireAdmin(principal: Principal, what: string): void {
  if (!principal.admin) throw new ForbiddenError(`${what} needs an admin token`);
}
