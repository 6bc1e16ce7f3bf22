import type { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import type { LogSystem } from '../lib/log-system.js';
import { NatsServer } from '../lib/nats-server.js';
import { EngineLogSystem } from './engine-ops.js';

/** How long `stop` gives the engine to close (appends in flight, read consumers, drain) before the server is stopped anyway. */
const CLOSE_TIMEOUT_MS = 30_000;

/**
 * Brook's JetStream engine (src/engine/jetstream) in the bench's own process, against a
 * nats-server of its own (ephemeral loopback port, own store directory, as `NatsJetStream`).
 * Driven through the Engine API exactly as `BrookEmbedded` is, so its figures divided by raw
 * NATS JetStream's are the engine's overhead. Engine defaults throughout (prefix BROOK, R1).
 */
export class BrookJetStream extends EngineLogSystem implements LogSystem {
  readonly name = 'brook-jetstream' as const;
  readonly label = 'Brook on JetStream';
  readonly durability =
    'Brook acks once JetStream has PubAcked every record of the batch (topic durability "os", the engine\'s only mode without sync_interval: always): the same as raw JetStream.';

  private server: NatsServer | null = null;
  protected override engine: JetStreamEngine | null = null;

  constructor(private readonly root: string) {
    super();
  }

  async start(): Promise<void> {
    // Imported here so a broken engine build skips this system instead of the whole bench.
    const { JetStreamEngine } = await import('../../src/engine/jetstream/index.js');
    this.server = await NatsServer.start(this.root, 'brook-js');
    try {
      const engine = new JetStreamEngine({ servers: this.server.url, name: 'brook-bench' });
      await engine.open();
      this.engine = engine;
    } catch (err) {
      // The suite only stops systems that started: do not leave the server running until exit.
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    const engine = this.engine;
    const server = this.server;
    this.engine = null;
    this.server = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (engine !== null) {
        const closing = engine.close();
        closing.catch(() => undefined); // settles after the server is gone if the race below timed out
        await Promise.race([
          closing,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`engine close took over ${CLOSE_TIMEOUT_MS} ms`)), CLOSE_TIMEOUT_MS);
          }),
        ]);
      }
    } finally {
      clearTimeout(timer);
      await server?.stop();
    }
  }
}
