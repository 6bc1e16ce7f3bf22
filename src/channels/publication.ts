/**
 * One message of a channel. Its data is JSON text, serialized once when published; transports
 * cache their encoding of it here (a complete WebSocket frame, an SSE event) so a message is
 * encoded once per channel, never once per subscriber.
 */
export class Publication {
  /** Transport caches, filled lazily by the first subscriber of each kind, dropped after the fan-out. */
  ws: Uint8Array | undefined = undefined;
  sse: string | undefined = undefined;
  /** The channel's previous offset, known for clustered channels only (docs/channels.md, "Several nodes"). */
  prev = -1;

  constructor(
    readonly offset: number,
    /** The message data as JSON text. */
    readonly data: string,
    /** When it was published, ms since the epoch. */
    readonly timestamp: number,
  ) {}
}

/** A join or leave, serialized once for every subscriber of the channel. */
export class PresenceEvent {
  ws: Uint8Array | undefined = undefined;
  constructor(
    readonly kind: 'join' | 'leave',
    /** The whole push frame as JSON text. */
    readonly json: string,
  ) {}
}
