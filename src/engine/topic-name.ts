import { InvalidTopicNameError } from './errors.js';

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

/** Topic names double as directory names and NATS subject tokens, hence the narrow alphabet. */
export function assertValidTopicName(name: string): void {
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') throw new InvalidTopicNameError(name);
}

/** Names starting with `__` are Brook's own (consumer offsets, ...); users cannot create them. */
export function isInternalTopic(name: string): boolean {
  return name.startsWith('__');
}
