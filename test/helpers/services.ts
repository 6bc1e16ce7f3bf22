// One loopback probe for tests and benchmarks alike.
import { isPortOpen } from '../../bench/lib/processes.js';

export { isPortOpen };

/** The loopback services Brook's integration tests and benchmarks use. */
export const SERVICES = {
  postgres: 5432,
  redis: 6379,
  nats: 4222,
  rabbitmq: 5672,
  mosquitto: 1883,
} as const;

export type ServiceName = keyof typeof SERVICES;

/**
 * Whether a service-backed test should run. Under CI=true a missing service is an error (the
 * test fails); elsewhere the test is skipped and says so loudly on stderr.
 */
export async function requireService(name: ServiceName): Promise<boolean> {
  if (await isPortOpen(SERVICES[name])) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is not reachable on 127.0.0.1:${SERVICES[name]} and CI=true`);
  process.stderr.write(`\n*** SKIPPED: ${name} is not running on 127.0.0.1:${SERVICES[name]}; its tests did not run ***\n\n`);
  return false;
}
