import { connect } from 'node:net';

/** The loopback services Brook's integration tests and benchmarks use. */
export const SERVICES = {
  postgres: 5432,
  redis: 6379,
  nats: 4222,
  rabbitmq: 5672,
  mosquitto: 1883,
} as const;

export type ServiceName = keyof typeof SERVICES;

export function isPortOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

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
