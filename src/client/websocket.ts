/**
 * The part of the WebSocket API the SDK uses: the WHATWG interface of browsers and Node 22+, which
 * the `ws` package implements too. Declared here rather than taken from lib.dom so the SDK
 * typechecks in Node projects and never depends on DOM types.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** Set to 'arraybuffer' by the SDK before any binary message can arrive (brook.v1.bin). */
  binaryType: string;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { readonly code: number; readonly reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

/**
 * A WebSocket class: `globalThis.WebSocket` in browsers, or `ws`'s default export in Node. The
 * third argument is `ws`'s options (ClientOptions.maskFrames); other classes ignore it.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: WebSocketOptions) => WebSocketLike;

/** The part of `ws`'s client options the SDK sets. */
export interface WebSocketOptions {
  /** Fills the masking key of each frame; an all-zero key is not applied. */
  readonly generateMask?: (mask: Uint8Array) => void;
}

/** `ws` options for frames that are not masked (ClientOptions.maskFrames: false). */
export const UNMASKED_FRAMES: WebSocketOptions = { generateMask: (mask) => mask.fill(0) };

/** The JSON subprotocol (docs/protocol.md). */
export const SUBPROTOCOL = 'brook.v1.json';
/** The binary subprotocol: records travel as binary frames (docs/protocol.md, "Binary subprotocol"). */
export const BINARY_SUBPROTOCOL = 'brook.v1.bin';

/** `readyState` of an open socket (the same constant in every implementation). */
export const OPEN = 1;

/** The global WebSocket class when the runtime has one (browsers, Node 22+, Deno, Bun). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  const candidate = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof candidate === 'function' ? (candidate as WebSocketConstructor) : undefined;
}
