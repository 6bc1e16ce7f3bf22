/** The CLI's view of Brook's HTTP API: JSON in, JSON out, errors carrying the server's code. */

export const DEFAULT_URL = 'http://127.0.0.1:7420';

/** An error answer from the server, or a failure to reach it. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiError';
  }
}

/** Where the server is and who the caller is: what every client command takes. */
export interface Connection {
  /** @defaultValue DEFAULT_URL (`--url`, env `BROOK_URL`) */
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>` (`--token`, env `BROOK_TOKEN`). */
  readonly token?: string | undefined;
}

export class HttpClient {
  private readonly base: string;
  private readonly authorization: Readonly<Record<string, string>>;

  constructor(connection: Connection) {
    let parsed: URL;
    try {
      parsed = new URL(connection.url);
    } catch (err) {
      throw new ApiError('INVALID_URL', 0, `not a URL: ${connection.url}`, { cause: err });
    }
    this.base = parsed.href.replace(/\/+$/, '');
    this.authorization = connection.token ? { authorization: `Bearer ${connection.token}` } : {};
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, signal);
  }

  /** `body` is sent as it is when a string (already serialized), else as JSON. */
  post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, typeof body === 'string' ? body : JSON.stringify(body), signal);
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path, undefined, undefined);
  }

  private async request<T>(method: string, path: string, body: string | undefined, signal: AbortSignal | undefined): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { ...this.authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError('UNREACHABLE', 0, `cannot reach Brook at ${this.base}: ${unreachableReason(err)}`, { cause: err });
    }
    const text = await res.text();
    if (!res.ok) throw errorFrom(res.status, text, this.authorization['authorization'] !== undefined);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
}

/** fetch wraps the socket error in `cause`; with several addresses tried, in an AggregateError. */
function unreachableReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  const codes = [cause, ...(cause instanceof AggregateError ? cause.errors : [])].map(
    (e) => (e as { code?: unknown } | undefined)?.code,
  );
  if (codes.includes('ECONNREFUSED')) return 'is `brook start` running?';
  return cause instanceof Error ? cause.message : String(err);
}

function errorFrom(status: number, text: string, sentToken: boolean): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    if (typeof code === 'string' && typeof message === 'string') {
      const hint = code === 'UNAUTHORIZED' && !sentToken ? ' (pass --token or set BROOK_TOKEN)' : '';
      return new ApiError(code, status, `${code}: ${message}${hint}`);
    }
  } catch {
    // Not one of Brook's JSON errors (a proxy in between?): report the status and raw text below.
  }
  return new ApiError('HTTP_ERROR', status, `HTTP ${status}: ${text.slice(0, 200)}`);
}

/** A topic or group name as one path segment. */
export const seg = encodeURIComponent;
