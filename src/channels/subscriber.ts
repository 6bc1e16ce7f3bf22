import type { Channel } from './channel.js';
import type { ChannelError } from './errors.js';
import type { PresenceEvent, Publication } from './publication.js';

/** A presence entry: who is in a channel. */
export interface PresenceEntry {
  readonly client: string;
  readonly user: string;
  /** Token info as JSON text, or undefined. */
  readonly info: string | undefined;
}

/**
 * What the hub fans out to: a transport connection (WebSocket, SSE stream). `deliver` is called
 * synchronously on the publish path and must never block or await: a subscriber that cannot take
 * the message applies its namespace's slow-client policy itself.
 */
export interface Subscriber {
  /** Presence identity of the connection. */
  readonly presence: PresenceEntry;
  /** False once the connection is gone (an async subscribe checks it before joining). */
  readonly active: boolean;
  deliver(channel: Channel, pub: Publication): void;
  /** A join or leave in a channel with `joinLeave`. */
  presenceEvent(channel: Channel, event: PresenceEvent): void;
  /** The server ended the subscription (a topic channel whose topic went away); nothing more comes. */
  ended(channel: Channel, error: ChannelError): void;
}
