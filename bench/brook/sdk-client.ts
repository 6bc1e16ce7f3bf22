import WebSocket from 'ws';
import { BrookClient, type ClientOptions, type WebSocketConstructor, type WebSocketOptions } from '../../src/client/index.js';

/** Errors no caller waits for (failed background commits, …), kept bounded for the report. */
export class ClientErrors {
  readonly seen: string[] = [];
  count = 0;

  push(err: Error): void {
    this.count++;
    if (this.seen.length < 10) this.seen.push(`${(err as { code?: string }).code ?? err.name}: ${err.message}`);
  }
}

/**
 * A `brook/client` BrookClient in the bench process, with the `ws` package as its WebSocket (as on
 * Node 20) and unmasked frames (`maskFrames: false`: the bench's payloads are its own, on
 * loopback; the NATS and Redis clients beside it speak plain TCP, which has no masking to skip).
 * Background errors go to `errors` instead of the console.
 */
export function sdkClient(url: string, errors: ClientErrors, extra: Partial<Omit<ClientOptions, 'url'>> = {}): BrookClient {
  const client = new BrookClient({ url, WebSocket, maskFrames: false, ...extra });
  client.on('error', (err) => errors.push(err));
  return client;
}

/**
 * A WebSocket class for one client whose socket the bench can break from outside the SDK, the
 * way a process dies or hangs:
 *
 * - `kill()`: `terminate()` destroys the TCP socket at once, with no close frame and no `leave`,
 *   as when the process is SIGKILLed (the kernel closes its sockets). The server sees the
 *   connection drop.
 * - `freeze()`: the socket stays open but nothing more is read from it (`pause()`) or written to
 *   it (sends are dropped), as when the process hangs or the network partitions: the server
 *   hears nothing, not even pongs, and only the session timeout ends the membership.
 */
export class BreakableSocket {
  private socket: WebSocket | null = null;

  /** Pass as the client's `WebSocket`. Remembers the client's latest socket. */
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the class below reports its instances here
    const owner = this;
    this.WebSocket = class extends WebSocket {
      constructor(url: string, protocols?: string | string[], options?: WebSocketOptions) {
        super(url, protocols, options);
        owner.socket = this;
      }
    };
  }

  kill(): void {
    this.require().terminate();
  }

  freeze(): void {
    const socket = this.require();
    socket.pause();
    socket.send = (() => undefined) as WebSocket['send'];
  }

  private require(): WebSocket {
    if (this.socket === null) throw new Error('the client has not opened a socket yet');
    return this.socket;
  }
}
