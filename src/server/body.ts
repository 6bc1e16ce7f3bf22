import type { IncomingMessage, ServerResponse } from 'node:http';
import { OVERSIZED_BODY_LINGER_BYTES, OVERSIZED_BODY_LINGER_MS } from './defaults.js';
import { HttpError } from './errors.js';

/** `application/json`, with or without parameters, and `application/<anything>+json`. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const semi = header.indexOf(';');
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** The declared body length, or null when absent (chunked) or unparseable. */
export function declaredLength(req: IncomingMessage): number | null {
  const header = req.headers['content-length'];
  if (header === undefined || !/^\d+$/.test(header)) return null;
  return Number(header);
}

export function tooLarge(limit: number): HttpError {
  return new HttpError('MESSAGE_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
}

/**
 * Reads and parses a JSON body, holding at most `limit` bytes. A body declared or found to be
 * larger is refused without buffering the rest: the response closes the connection, and what
 * the client is still sending is read and dropped for a short while (so it sees the 413 rather
 * than a reset), then the socket is cut.
 */
export async function readJsonBody(req: IncomingMessage, res: ServerResponse, limit: number): Promise<unknown> {
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new HttpError(
      'UNSUPPORTED_MEDIA_TYPE',
      `expected content-type application/json, got ${JSON.stringify(req.headers['content-type'] ?? null)}`,
    );
  }
  const declared = declaredLength(req);
  if (declared !== null && declared > limit) {
    discardRest(req, res);
    throw tooLarge(limit);
  }
  const buf = await readBounded(req, res, limit);
  if (buf.length === 0) throw new HttpError('INVALID_JSON', 'request body is empty; expected a JSON document');
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (err) {
    throw new HttpError('INVALID_JSON', `request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`);
  }
}

function readBounded(req: IncomingMessage, res: ServerResponse, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        chunks.length = 0;
        discardRest(req, res);
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onAborted = (): void => {
      cleanup();
      reject(new HttpError('INVALID_REQUEST', 'client aborted the request body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function discardRest(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  if (req.complete) return;
  const cut = (): void => {
    req.socket.destroy();
  };
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > OVERSIZED_BODY_LINGER_BYTES) cut();
  });
  req.resume();
  res.once('finish', () => {
    if (!req.complete) setTimeout(cut, OVERSIZED_BODY_LINGER_MS).unref();
  });
}
