import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/**
 * Every name Brook puts on the JetStream server, derived from the engine's prefix:
 *
 * ```
 *  stream (one per partition)   <prefix>_<topic token>_<p>          BROOK_orders_3
 *  subject, delete topics       <prefix>.<topic token>.<p>          BROOK.orders.3
 *  subject, compacted topics    <prefix>.<topic token>.<p>.<key>    BROOK.users.0.kYWxpY2U
 *  KV bucket, topic metadata    <prefix>_topics     key <topic token>
 *  KV bucket, group offsets     <prefix>_offsets    key <topic token>.<group token>.<p>
 *  KV bucket, coordinator lease <prefix>_coordinator  key leader
 *  subject, group calls         $BRK.<prefix>.groups
 * ```
 *
 * A topic token is the topic name with `_` and `.` escaped (`_5F`, `_2E`), so it is one subject
 * token and one stream-name component, and the mapping is injective. Names that would make a
 * stream name longer than {@link MAX_STREAM_NAME} (the file store uses it as a directory name)
 * become `_h` + 128 bits of SHA-256, which no escaped name can start with.
 */

const PREFIX = /^[A-Za-z0-9-]{1,32}$/;
const MAX_STREAM_NAME = 200;
const MAX_KEY_TOKEN = 200;

export function assertValidPrefix(prefix: string): void {
  if (!PREFIX.test(prefix)) {
    throw new InvalidArgumentError(`JetStream prefix must be 1-32 characters from [A-Za-z0-9-], got ${JSON.stringify(prefix)}`);
  }
}

/** Topic names are `[a-zA-Z0-9._-]{1,249}` (topic-name.ts). */
export function topicToken(topic: string): string {
  const escaped = topic.replace(/[_.]/g, (c) => (c === '_' ? '_5F' : '_2E'));
  // Worst case with a 32-character prefix and a 4-digit partition must fit.
  if (escaped.length <= MAX_STREAM_NAME - 32 - 6) return escaped;
  return `_h${createHash('sha256').update(topic).digest('hex').slice(0, 32)}`;
}

/** The names of one engine instance's objects on the server. */
export class Names {
  readonly topicsBucket: string;
  readonly offsetsBucket: string;
  readonly leaseBucket: string;
  /** Outside `<prefix>.>`, so no partition stream ever captures it. */
  readonly groupCallsSubject: string;

  constructor(readonly prefix: string) {
    assertValidPrefix(prefix);
    this.topicsBucket = `${prefix}_topics`;
    this.offsetsBucket = `${prefix}_offsets`;
    this.leaseBucket = `${prefix}_coordinator`;
    this.groupCallsSubject = `$BRK.${prefix}.groups`;
  }

  /** Matches the subjects of every partition stream of this prefix (for listing and cleanup). */
  get allSubjects(): string {
    return `${this.prefix}.>`;
  }

  stream(token: string, partition: number): string {
    return `${this.prefix}_${token}_${partition}`;
  }

  /** The subject records of a delete-policy partition are published on. */
  subject(token: string, partition: number): string {
    return `${this.prefix}.${token}.${partition}`;
  }

  /** What a partition stream captures: its subject, or one subject per key when compacted. */
  streamSubject(token: string, partition: number, compacted: boolean): string {
    return compacted ? `${this.subject(token, partition)}.*` : this.subject(token, partition);
  }

  /** One subject per key, so `max_msgs_per_subject: 1` keeps the latest record of each key. */
  keySubject(token: string, partition: number, key: Uint8Array): string {
    return `${this.subject(token, partition)}.${keyToken(key)}`;
  }

  offsetKey(token: string, group: string, partition: number): string {
    return `${token}.${groupToken(group)}.${partition}`;
  }

  /** KV subject filter for every committed offset of one topic (to purge them in one call). */
  offsetSubjectsOfTopic(token: string): string {
    return `$KV.${this.offsetsBucket}.${token}.>`;
  }
}

/** `k` + base64url(key), or `h` + base64url(SHA-256(key)) for long keys: one valid subject token. */
export function keyToken(key: Uint8Array): string {
  const b64 = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64url');
  if (b64.length <= MAX_KEY_TOKEN) return `k${b64}`;
  return `h${createHash('sha256').update(key).digest('base64url')}`;
}

export function groupToken(group: string): string {
  return `g${Buffer.from(group, 'utf8').toString('base64url')}`;
}
