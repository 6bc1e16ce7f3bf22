import { requireAdmin } from '../auth/index.js';
import type { Router } from '../router.js';
import type { RouteDeps } from './deps.js';

/**
 * Prometheus text. Admin only when auth is on: labels name topics and groups. (A scraper sends
 * `Authorization: Bearer <admin token>`; Prometheus' `authorization` scrape setting does it.)
 */
export function metricsRoutes(router: Router, { metrics }: RouteDeps): void {
  router.add('GET', '/metrics', async (ctx) => {
    requireAdmin(ctx.principal, 'reading metrics');
    return { status: 200, body: await metrics.scrape(), headers: { 'content-type': metrics.contentType } };
  });
}
