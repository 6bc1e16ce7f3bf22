import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, type RawData } from 'ws';
import type { FrameTransport, OutboundFrame, SessionCloseReason, StreamSession } from '../../broker/index.js';
import { closeCodeFor, type CloseReason } from '../errors.js';

/**
 * One WebSocket carrying one StreamSession: frames in (text, and binary on `brook.v1.bin`), encoded frames out, the socket's
 * `drain` resuming paused pushes, and liveness for the gateway's heartbeat.
 *
 * Inbound frames are not read while the send buffer holds more than `maxBufferedBytes`: every
 * request is answered, so a peer that keeps sending requests without reading the replies would
 * otherwise pile its replies up here without bound. Paused, it can add at most the replies of
 * the requests already in flight (the session's `maxInflightRequests`, `maxInflightProduce`).
 */
export class Connection implements FrameTransport {
  /** When the peer was last heard from (any frame, ping or pong), in ms since the epoch. */
  lastSeen = Date.now();
  private session: StreamSession | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private inputPaused = false;
  private corked = false;

  constructor(
    readonly ws: WebSocket,
    private readonly socket: Socket,
    private readonly logger: Logger,
    private readonly maxBufferedBytes: number,
  ) {
    // ws has already closed the connection (1009 for an oversized frame, 1002 for a protocol
    // violation); the close event ends the session. Listened to from the start, also on
    // connections refused right after the handshake: an unheard 'error' event would throw.
    ws.on('error', (err) => this.logger.debug({ err, session: this.session?.id }, 'websocket error'));
  }

  /** Starts the session and wires the socket to it. */
  attach(session: StreamSession, onClose: () => void): void {
    this.session = session;
    const ws = this.ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.lastSeen = Date.now();
      if (isBinary) session.handleBinary(bytes(data));
      else session.handle(text(data));
    });
    ws.on('pong', () => (this.lastSeen = Date.now()));
    ws.on('ping', () => (this.lastSeen = Date.now()));
    ws.once('close', (code: number) => {
      clearTimeout(this.killTimer);
      this.socket.off('drain', onDrain);
      this.logger.debug({ session: session.id, code }, 'websocket closed');
      void session.close();
      onClose();
    });
    const onDrain = (): void => {
      this.resumeInput();
      session.drained();
    };
    this.socket.on('drain', onDrain);
    session.start();
  }

  send(frame: OutboundFrame): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    // Frames sent in one burst (the acks and pushes that one group commit completes, a reply
    // per request of one read) leave in one write: each write to a socket is a system call and,
    // on loopback, the receiver's TCP work too. Uncorked once the burst's ticks and microtasks
    // have run, not on a timer, so no frame waits for later work.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.ws.send(frame);
    // Past the bound the socket's write returned false, so its `drain` resumes reading.
    if (!this.inputPaused && this.ws.bufferedAmount > this.maxBufferedBytes) {
      this.inputPaused = true;
      this.ws.pause();
    }
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(reason: SessionCloseReason, message: string): void {
    this.end(reason, message);
  }

  /**
   * Closes with the code for `reason`. A peer that does not complete the closing handshake
   * within `killAfterMs` is cut off.
   */
  end(reason: CloseReason, message: string, killAfterMs = 5_000): void {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    if (this.ws.readyState !== WebSocket.CLOSING) this.ws.close(closeCodeFor(reason), closeReason(message));
    // Read again so the peer's close frame can complete the handshake; the session ignores the rest.
    this.resumeInput();
    if (this.killTimer === undefined) {
      this.killTimer = setTimeout(() => this.ws.terminate(), killAfterMs);
      this.killTimer.unref();
    }
    if (this.session) void this.session.close();
  }

  private resumeInput(): void {
    if (!this.inputPaused) return;
    this.inputPaused = false;
    this.ws.resume();
  }

  stats(): ReturnType<StreamSession['stats']> | undefined {
    return this.session?.stats();
  }
}

/** A binary message as one contiguous view (ws hands a fragmented message over in pieces). */
function bytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Close reasons are limited to 123 bytes of UTF-8. */
function closeReason(message: string): string {
  let out = message.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}
