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

export class HttpClient {
  private readonly base: string;

  constructor(url: string) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (err) {
      throw new ApiError('INVALID_URL', 0, `not a URL: ${url}`, { cause: err });
    }
    this.base = parsed.href.replace(/\/+$/, '');
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
        ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const reason = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
      throw new ApiError('UNREACHABLE', 0, `cannot reach Brook at ${this.base}: ${reason}`, { cause: err });
    }
    const text = await res.text();
    if (!res.ok) throw errorFrom(res.status, text);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
}

function errorFrom(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = body.error ?? {};
    if (typeof code === 'string' && typeof message === 'string') return new ApiError(code, status, `${code}: ${message}`);
  } catch {
    // Not one of Brook's JSON errors (a proxy in between?): report the status and raw text below.
  }
  return new ApiError('HTTP_ERROR', status, `HTTP ${status}: ${text.slice(0, 200)}`);
}

/** A topic or group name as one path segment. */
export const seg = encodeURIComponent;
