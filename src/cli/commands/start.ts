import type { Writable } from 'node:stream';
import { pino, type LevelWithSilent } from 'pino';
import { EmbeddedEngine } from '../../engine/embedded/index.js';
import { createServer } from '../../server/index.js';
import { writeLine } from '../output.js';

export interface StartOptions {
  readonly port: number;
  readonly host: string;
  readonly data: string;
  readonly autoCreateTopics: boolean;
  readonly logLevel: LevelWithSilent;
}

/**
 * Opens the engine, serves HTTP, and resolves after a clean shutdown on SIGTERM or SIGINT
 * (server first, so in-flight requests finish against an open engine, then the engine). A
 * second signal exits at once with status 1.
 */
export async function start(options: StartOptions, out: Writable): Promise<void> {
  // Synchronous: few lines (no per-request logging at info) and none lost on a crash.
  const logger = pino({ level: options.logLevel }, pino.destination({ dest: 2, sync: true }));
  const engine = new EmbeddedEngine({ dataDir: options.data, logger });
  await engine.open();
  let server;
  try {
    server = await createServer({
      engine,
      host: options.host,
      port: options.port,
      logger,
      autoCreateTopics: options.autoCreateTopics,
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const running = server;

  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      running
        .close()
        .then(() => engine.close())
        .then(() => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          logger.info('stopped');
          resolve();
        }, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    writeLine(out, `brook listening on ${running.url} (data: ${options.data})`).catch(reject);
  });
}
