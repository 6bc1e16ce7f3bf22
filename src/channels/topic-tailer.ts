/**
 * Exposes a log topic partition as a channel: while the channel has subscribers, one tailer reads
 * the partition (one promise per batch, never per message or per subscriber) and commits each
 * record as a publication whose offset is the record's log offset.
 */
import type { Logger } from 'pino';
import type { Engine, StoredRecord } from '../engine/index.js';
import type { Channel } from './channel.js';
import { TOPIC_TAIL_BATCH, TOPIC_TAIL_WAIT_MS } from './defaults.js';
import { Publication } from './publication.js';

const decoder = new TextDecoder();

/** A record value as message data: its JSON (on one line), else the text as a JSON string. */
export function recordData(record: StoredRecord): string {
  if (record.value === null) return 'null';
  const text = decoder.decode(record.value);
  try {
    const value: unknown = JSON.parse(text); // validates: the text is spliced into frames as-is
    // Valid JSON without a line break is already one line (what SSE `data:` needs): used as
    // stored. Re-serializing it was the tailer's largest per-record cost (CDC envelopes, 10k/s).
    return text.includes('\n') || text.includes('\r') ? JSON.stringify(value) : text;
  } catch {
    // Not JSON: the browser gets the text as a string, which is still a faithful rendering.
    return JSON.stringify(text);
  }
}

export function toPublication(record: StoredRecord): Publication {
  return new Publication(record.offset, recordData(record), record.timestamp);
}

export class TopicTailer {
  /** Resolves once the recovery window is loaded; rejects when the topic cannot be read. */
  readonly ready: Promise<void>;
  private readonly abort = new AbortController();

  constructor(
    private readonly engine: Engine,
    readonly topic: string,
    readonly partition: number,
    private readonly channel: Channel,
    private readonly logger: Logger,
    private readonly onFailure: (err: unknown) => void,
  ) {
    this.ready = this.fill();
    this.ready.then(
      () => void this.loop(),
      () => undefined, // the subscribe that awaited it reports the error
    );
  }

  stop(): void {
    this.abort.abort();
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async fill(): Promise<void> {
    const wm = await this.engine.watermarks(this.topic, this.partition);
    let offset = Math.max(wm.lowWatermark, wm.highWatermark - this.channel.namespace.historySize);
    this.channel.next = offset;
    while (offset < wm.highWatermark && !this.stopped) offset = await this.readFrom(offset);
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    try {
      while (!signal.aborted) {
        const more = await this.engine.waitForData(this.topic, this.partition, this.channel.next, { timeoutMs: TOPIC_TAIL_WAIT_MS, signal });
        if (more && !signal.aborted) await this.readFrom(this.channel.next);
      }
    } catch (err) {
      if (signal.aborted) return;
      this.logger.warn({ err, topic: this.topic, partition: this.partition }, 'topic channel stopped: the topic cannot be read');
      this.onFailure(err);
    }
  }

  /** Reads one batch at `offset`, commits it and returns where the next read starts. */
  private async readFrom(offset: number): Promise<number> {
    const page = await this.engine.read(this.topic, this.partition, offset, { maxRecords: TOPIC_TAIL_BATCH });
    if (this.stopped) return page.nextOffset;
    for (const record of page.records) {
      this.channel.next = record.offset + 1;
      this.channel.commit(toPublication(record));
    }
    this.channel.next = Math.max(this.channel.next, page.nextOffset);
    return page.nextOffset;
  }
}
