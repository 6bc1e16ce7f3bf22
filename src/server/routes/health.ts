import type { Router } from '../router.js';
import { json, rawJson } from '../reply.js';
import type { RouteDeps } from './deps.js';

const OK = '{"status":"ok"}';

/**
 * Liveness answers while the process serves; readiness turns 503 once shutdown begins. Both are
 * public: probes carry no credentials and learn nothing about the data.
 */
export function healthRoutes(router: Router, deps: RouteDeps): void {
  router.add('GET', '/healthz', () => rawJson(200, OK), { public: true });
  router.add('GET', '/readyz', () => (deps.isClosing() ? json(503, { status: 'shutting_down' }) : rawJson(200, OK)), {
    public: true,
  });
}
