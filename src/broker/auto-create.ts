import type { Logger } from 'pino';
import { TopicExistsError, TopicNotFoundError, type Engine } from '../engine/index.js';

/**
 * Producing to an unknown topic creates it with one partition, then retries once. Concurrent
 * first produces to one topic share one creation (the engine refuses a second createTopic while
 * the first is in progress). Entries live only while a creation runs, so the map is bounded by
 * concurrent produces.
 */
export class TopicAutoCreator {
  private readonly creating = new Map<string, Promise<void>>();

  constructor(
    private readonly engine: Engine,
    private readonly logger: Logger,
  ) {}

  async run<T>(topic: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof TopicNotFoundError)) throw err;
    }
    await this.create(topic);
    return op();
  }

  private create(topic: string): Promise<void> {
    let pending = this.creating.get(topic);
    if (!pending) {
      pending = (async () => {
        try {
          await this.engine.createTopic(topic, { partitions: 1 });
          this.logger.info({ topic }, 'topic auto-created on produce');
        } catch (err) {
          // Created by someone else meanwhile: what we wanted.
          if (!(err instanceof TopicExistsError)) throw err;
        } finally {
          this.creating.delete(topic);
        }
      })();
      this.creating.set(topic, pending);
    }
    return pending;
  }
}
