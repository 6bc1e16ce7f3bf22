import { MAX_CHANNEL_NAME } from './defaults.js';
import { ChannelError } from './errors.js';

const CHANNEL_NAME = /^[A-Za-z0-9._:#,@=~-]+$/;

/** What a channel name says about itself. */
export interface ChannelName {
  readonly name: string;
  /** Text before the first `:`; `""` when there is none. */
  readonly namespace: string;
  /** Text after the namespace's `:` (the whole name in the default namespace). */
  readonly rest: string;
  /** For `…#42,77`: the only users who may read it; null for other channels. */
  readonly users: readonly string[] | null;
}

/** Parses and validates a channel name; throws INVALID_CHANNEL. */
export function parseChannelName(name: string): ChannelName {
  if (name.length === 0 || name.length > MAX_CHANNEL_NAME || !CHANNEL_NAME.test(name)) {
    throw new ChannelError(
      'INVALID_CHANNEL',
      `invalid channel name ${JSON.stringify(name.slice(0, 300))}: 1-${MAX_CHANNEL_NAME} characters of [A-Za-z0-9._:#,@=~-]`,
    );
  }
  const colon = name.indexOf(':');
  const namespace = colon === -1 ? '' : name.slice(0, colon);
  const rest = colon === -1 ? name : name.slice(colon + 1);
  const hash = name.lastIndexOf('#');
  let users: string[] | null = null;
  if (hash !== -1) {
    users = name.slice(hash + 1).split(',');
    if (users.some((u) => u === '')) {
      throw new ChannelError('INVALID_CHANNEL', `invalid user channel ${JSON.stringify(name)}: "#" must be followed by user ids separated by ","`);
    }
  }
  return { name, namespace, rest, users };
}
