import { MAX_SESSION_TIMEOUT_MS, MIN_SESSION_TIMEOUT_MS, DEFAULT_SESSION_TIMEOUT_MS } from '../defaults.js';
import { InvalidArgumentError } from '../errors.js';
import { assertValidTopicName } from '../topic-name.js';
import type { AssignmentStrategy, JoinGroupRequest, MemberFence, OffsetCommit } from '../types.js';
import { compareStrings } from './assignors/index.js';
import { MAX_ID_LENGTH, MAX_OFFSET_METADATA_LENGTH, MAX_TOPICS_PER_MEMBER } from './coordinator-options.js';

/**
 * Checks on values the types cannot express (ranges, lengths). Shapes are trusted: the server
 * parses untrusted input with schemas before it reaches the engine.
 */

export function assertId(what: string, value: string): void {
  if (value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new InvalidArgumentError(`${what} must have 1-${MAX_ID_LENGTH} characters`);
  }
}

export function assertOffsetCommit(commit: OffsetCommit): void {
  if (!Number.isSafeInteger(commit.partition) || commit.partition < 0) {
    throw new InvalidArgumentError(`partition must be a non-negative integer, got ${commit.partition}`);
  }
  if (!Number.isSafeInteger(commit.offset) || commit.offset < 0) {
    throw new InvalidArgumentError(`offset must be a non-negative integer, got ${commit.offset} for ${commit.topic}/${commit.partition}`);
  }
  if (commit.metadata !== undefined && commit.metadata.length > MAX_OFFSET_METADATA_LENGTH) {
    throw new InvalidArgumentError(`commit metadata is longer than ${MAX_OFFSET_METADATA_LENGTH} characters`);
  }
}

export function assertFence(fence: MemberFence): void {
  assertId('member id', fence.memberId);
  if (!Number.isSafeInteger(fence.generation) || fence.generation < 0) {
    throw new InvalidArgumentError(`generation must be a non-negative integer, got ${fence.generation}`);
  }
}

/** A join request with defaults applied, topics sorted and deduplicated. */
export interface ParsedJoin {
  readonly group: string;
  readonly memberId: string | undefined;
  readonly clientId: string;
  readonly topics: readonly string[];
  readonly sessionTimeoutMs: number;
  readonly strategy: AssignmentStrategy | undefined;
}

export function parseJoinRequest(request: JoinGroupRequest): ParsedJoin {
  assertId('group', request.group);
  if (request.memberId !== undefined) assertId('member id', request.memberId);
  const clientId = request.clientId ?? '';
  if (clientId.length > MAX_ID_LENGTH) throw new InvalidArgumentError(`client id is longer than ${MAX_ID_LENGTH} characters`);
  const topics = [...new Set(request.topics)].sort(compareStrings);
  if (topics.length === 0) throw new InvalidArgumentError('a member must subscribe to at least one topic');
  if (topics.length > MAX_TOPICS_PER_MEMBER) {
    throw new InvalidArgumentError(`a member may subscribe to at most ${MAX_TOPICS_PER_MEMBER} topics`);
  }
  for (const topic of topics) assertValidTopicName(topic);
  return {
    group: request.group,
    memberId: request.memberId,
    clientId,
    topics,
    sessionTimeoutMs: sessionTimeout(request.sessionTimeoutMs),
    strategy: request.strategy,
  };
}

/** Clamped rather than refused, so a client built against other bounds can still join. */
function sessionTimeout(requested: number | undefined): number {
  if (requested === undefined) return DEFAULT_SESSION_TIMEOUT_MS;
  if (!Number.isFinite(requested)) throw new InvalidArgumentError(`session timeout must be a finite number, got ${requested}`);
  return Math.round(Math.min(MAX_SESSION_TIMEOUT_MS, Math.max(MIN_SESSION_TIMEOUT_MS, requested)));
}
