/**
 * Who may do what on which channel. The transports turn a verified token into a
 * {@link ChannelIdentity}; the checks here are pure so the WebSocket, SSE and HTTP answer alike.
 */
import { ChannelError } from './errors.js';
import type { ChannelName } from './names.js';
import { matchesChannel } from './pattern.js';

export type ChannelAction = 'subscribe' | 'publish' | 'presence' | 'history';

export const CHANNEL_ACTIONS: readonly ChannelAction[] = ['subscribe', 'publish', 'presence', 'history'];

export interface ChannelCapability {
  /** Channel pattern; `*` is any run of characters. */
  readonly match: string;
  readonly allow: readonly ChannelAction[];
}

export interface ChannelIdentity {
  /** The token's `sub`; `""` when anonymous. */
  readonly user: string;
  /** Auth is off: every action is allowed. */
  readonly unrestricted: boolean;
  readonly capabilities: readonly ChannelCapability[];
  /** Shown in presence; serialized JSON or undefined. */
  readonly info?: unknown;
  /**
   * Whether the caller may read a log topic. A topic channel needs this as well as the channel
   * capability, so exposing topics as channels never widens who can read them.
   * @defaultValue every topic (auth off)
   */
  readonly canReadTopic?: (topic: string) => boolean;
}

/** Everyone when auth is off. */
export const UNRESTRICTED: ChannelIdentity = Object.freeze({ user: '', unrestricted: true, capabilities: Object.freeze([]) });

/**
 * Whether `identity` may `action` on `channel`. A user channel (`…#ids`) is readable only by its
 * listed users, whatever the capabilities say, and by them without a capability.
 */
export function canOnChannel(identity: ChannelIdentity, action: ChannelAction, channel: ChannelName): boolean {
  if (identity.unrestricted) return true;
  if (channel.users !== null && action !== 'publish') return identity.user !== '' && channel.users.includes(identity.user);
  for (const capability of identity.capabilities) {
    if (capability.allow.includes(action) && matchesChannel(capability.match, channel.name)) return true;
  }
  return false;
}

/** Throws FORBIDDEN unless allowed; the message never says whether the channel exists. */
export function authorizeChannel(identity: ChannelIdentity, action: ChannelAction, channel: ChannelName): void {
  if (!canOnChannel(identity, action, channel)) {
    throw new ChannelError('FORBIDDEN', `not allowed to ${action} channel ${JSON.stringify(channel.name)}`);
  }
}
