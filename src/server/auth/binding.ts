/** Which addresses may be served without authentication. */
import { isIP } from 'node:net';
import { InsecureBindError } from './errors.js';

/** `localhost`, 127.0.0.0/8, `::1` and IPv4-mapped loopback. Brackets around IPv6 are allowed. */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  const v4 = h.toLowerCase().startsWith('::ffff:') ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(h) === 6 && /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(h);
}

/**
 * What serving `host` with this auth setup means:
 * - `authenticated`: auth is on.
 * - `local-open`: auth is off on loopback (a development setup; worth a warning).
 * - `exposed-open`: auth is off on a reachable address, explicitly allowed (a loud warning).
 *
 * Throws InsecureBindError for auth off on a non-loopback address without `insecureNoAuth`.
 */
export function bindExposure(
  host: string,
  authEnabled: boolean,
  insecureNoAuth: boolean,
): 'authenticated' | 'local-open' | 'exposed-open' {
  if (authEnabled) return 'authenticated';
  if (isLoopbackHost(host)) return 'local-open';
  if (!insecureNoAuth) throw new InsecureBindError(host);
  return 'exposed-open';
}
