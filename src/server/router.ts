import { HttpError } from './errors.js';
import type { RequestContext } from './request-context.js';
import type { Reply } from './reply.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type Handler = (ctx: RequestContext) => Promise<Reply> | Reply;

export interface RouteOptions {
  /**
   * Served without credentials even when auth is on (health probes). Every other route
   * authenticates its caller before its handler runs. @defaultValue false
   */
  readonly public?: boolean;
}

interface CompiledRoute {
  readonly method: Method;
  /** As declared (`/v1/topics/:topic`): the metrics label, bounded by the number of routes. */
  readonly path: string;
  readonly public: boolean;
  /** Literal segments as strings, parameters as `{ param }`. */
  readonly segments: readonly (string | { readonly param: string })[];
  readonly handler: Handler;
}

export interface RouteMatch {
  readonly handler: Handler;
  /** The route's declared path. */
  readonly path: string;
  readonly public: boolean;
  readonly params: ReadonlyMap<string, string>;
}

/**
 * A small exact-segment router: `/v1/topics/:topic` matches `/v1/topics/orders`, parameters are
 * percent-decoded and never empty. A path that matches under another method is a 405 with
 * `Allow`; one that matches nothing is a 404. A linear scan is plenty for a few dozen routes.
 */
export class Router {
  private readonly routes: CompiledRoute[] = [];

  add(method: Method, path: string, handler: Handler, options: RouteOptions = {}): this {
    const segments = path
      .split('/')
      .slice(1)
      .map((s) => (s.startsWith(':') ? { param: s.slice(1) } : s));
    this.routes.push({ method, path, public: options.public ?? false, segments, handler });
    return this;
  }

  match(method: string, pathname: string): RouteMatch {
    const parts = pathname.split('/').slice(1);
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop(); // tolerate a trailing slash
    const allowed: Method[] = [];
    const lookup = method === 'HEAD' ? 'GET' : method;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === lookup) return { handler: route.handler, path: route.path, public: route.public, params };
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new HttpError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}; use ${allowed.join(', ')}`, {
        allow: allowed.join(', '),
      });
    }
    throw new HttpError('NOT_FOUND', `no route for ${method} ${pathname}`);
  }
}

function matchSegments(
  segments: CompiledRoute['segments'],
  parts: readonly string[],
): Map<string, string> | null {
  if (segments.length !== parts.length) return null;
  let params: Map<string, string> | null = null;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if (typeof segment === 'string') {
      if (segment !== part) return null;
      continue;
    }
    if (part === '') return null;
    params ??= new Map();
    params.set(segment.param, decodeSegment(part));
  }
  return params ?? new Map();
}

function decodeSegment(part: string): string {
  if (!part.includes('%')) return part;
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError('INVALID_REQUEST', `malformed percent-encoding in path segment "${part.slice(0, 100)}"`);
  }
}
