import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ZodType } from 'zod';
import type { Principal } from './auth/index.js';
import { readJsonBody } from './body.js';
import { HttpError } from './errors.js';

/** What a handler sees of one request. */
export class RequestContext {
  private controller: AbortController | undefined;

  constructor(
    readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly params: ReadonlyMap<string, string>,
    readonly query: URLSearchParams,
    private readonly maxBodyBytes: number,
    private readonly shutdown: AbortSignal,
    /** Who is asking: verified before the handler runs (ANONYMOUS when auth is off). */
    readonly principal: Principal,
  ) {}

  /**
   * The raw response, for handlers that stream (SSE) and write it themselves; once they have
   * written the head, the Reply they return is not sent.
   */
  get response(): ServerResponse {
    return this.res;
  }

  /** The client's address (what anonymous produce quotas are counted by). */
  get address(): string | undefined {
    return this.req.socket.remoteAddress;
  }

  /** A path parameter the route declared. */
  param(name: string): string {
    const value = this.params.get(name);
    if (value === undefined) throw new Error(`route has no parameter "${name}"`);
    return value;
  }

  /** Reads the body (bounded), parses it as JSON and validates it against `schema`. */
  async body<T>(schema: ZodType<T>): Promise<T> {
    const raw = await readJsonBody(this.req, this.res, this.maxBodyBytes);
    return validate(schema, raw, 'body');
  }

  /**
   * Aborts when the client goes away or the server shuts down; made on first use, since only
   * long polls need it.
   */
  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      const abort = (): void => controller.abort();
      this.res.once('close', abort);
      if (this.shutdown.aborted) abort();
      else this.shutdown.addEventListener('abort', abort, { once: true });
      this.res.once('close', () => this.shutdown.removeEventListener('abort', abort));
    }
    return this.controller.signal;
  }
}

/** Validates untrusted input; the first few problems become one INVALID_REQUEST message. */
export function validate<T>(schema: ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 3).map((issue) => {
    const path = issue.path.length > 0 ? `${where}.${issue.path.map(String).join('.')}` : where;
    return `${path}: ${issue.message}`;
  });
  const more = result.error.issues.length > 3 ? ` (and ${result.error.issues.length - 3} more)` : '';
  throw new HttpError('INVALID_REQUEST', problems.join('; ') + more);
}
