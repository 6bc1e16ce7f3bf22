import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from 'pino';
import {
  BrookError,
  CoordinatorNotAvailableError,
  EngineClosedError,
  InvalidArgumentError,
  NotPartitionOwnerError,
  PartitionNotFoundError,
  StaleGenerationError,
  StorageError,
  TopicNotFoundError,
  UnknownMemberError,
} from '../errors.js';
import type {
  CommittedOffset,
  GroupDescription,
  JoinGroupRequest,
  MemberAssignment,
  MemberFence,
  OffsetCommit,
} from '../types.js';

/**
 * Consumer-group calls between Brook nodes: the elected coordinator serves them on one NATS
 * subject, every other node sends them there (docs/jetstream-engine.md, Consumer groups).
 * Request `{"op","args"}`, reply `{"ok":result}` or `{"error":{"code","message","fields"}}`.
 */

/** The group operations a node may need from the coordinator; `GroupCoordinator` has them all. */
export interface GroupCalls {
  join(request: JoinGroupRequest): Promise<MemberAssignment>;
  heartbeat(group: string, memberId: string): Promise<MemberAssignment>;
  leave(group: string, memberId: string): Promise<void>;
  commit(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void>;
  fetch(group: string, topic?: string): Promise<CommittedOffset[]>;
  describe(group: string): Promise<GroupDescription>;
  list(): Promise<string[]>;
}

type Op = keyof GroupCalls;
const OPS: ReadonlySet<string> = new Set<Op>(['join', 'heartbeat', 'leave', 'commit', 'fetch', 'describe', 'list']);

interface Request {
  readonly op: Op;
  readonly args: unknown[];
}

interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

type Reply = { readonly ok: unknown } | { readonly error: ErrorBody };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serves group calls on `subject` from `coordinator` until the subscription is closed. */
export function serveGroupCalls(nc: NatsConnection, subject: string, coordinator: GroupCalls, logger: Logger): Subscription {
  return nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err) {
        logger.warn({ err }, 'group call subscription failed');
        return;
      }
      void answer(msg, coordinator, logger);
    },
  });
}

async function answer(msg: Msg, coordinator: GroupCalls, logger: Logger): Promise<void> {
  let reply: Reply;
  try {
    const request = parseRequest(msg.data);
    // The args were produced by GroupCalls' own types on the caller; the coordinator validates them.
    const fn = coordinator[request.op] as (...args: unknown[]) => Promise<unknown>;
    const result = await fn.apply(coordinator, request.args);
    reply = { ok: result ?? null };
  } catch (err) {
    reply = { error: errorBody(err) };
    if (!(err instanceof BrookError)) logger.error({ err }, 'group call failed');
  }
  try {
    msg.respond(encoder.encode(JSON.stringify(reply)));
  } catch (err) {
    logger.debug({ err }, 'could not answer a group call (connection closing)');
  }
}

function parseRequest(data: Uint8Array): Request {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch {
    throw new InvalidArgumentError('group call is not JSON');
  }
  const r = parsed as Partial<Request> | null;
  if (r === null || typeof r !== 'object' || typeof r.op !== 'string' || !OPS.has(r.op) || !Array.isArray(r.args)) {
    throw new InvalidArgumentError('group call must be {"op","args"} with a known op');
  }
  return r as Request;
}

function errorBody(err: unknown): ErrorBody {
  // A coordinator closing under a call (this node is stepping down) is a failover, not a shutdown.
  if (err instanceof EngineClosedError) return { code: 'COORDINATOR_NOT_AVAILABLE', message: 'the coordinator is stepping down', fields: {} };
  if (err instanceof BrookError) return { code: err.code, message: err.message, fields: { ...err } };
  return { code: 'STORAGE_ERROR', message: err instanceof Error ? err.message : String(err), fields: {} };
}

/** Sends group calls to whichever node serves `subject`. */
export class RemoteGroupCalls implements GroupCalls {
  private inFlight = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subject: string,
    private readonly timeoutMs: number,
    private readonly maxInFlight: number,
  ) {}

  join(request: JoinGroupRequest): Promise<MemberAssignment> {
    return this.call('join', [request]) as Promise<MemberAssignment>;
  }
  heartbeat(group: string, memberId: string): Promise<MemberAssignment> {
    return this.call('heartbeat', [group, memberId]) as Promise<MemberAssignment>;
  }
  async leave(group: string, memberId: string): Promise<void> {
    await this.call('leave', [group, memberId]);
  }
  async commit(group: string, commits: readonly OffsetCommit[], fence?: MemberFence): Promise<void> {
    await this.call('commit', fence === undefined ? [group, commits] : [group, commits, fence]);
  }
  fetch(group: string, topic?: string): Promise<CommittedOffset[]> {
    return this.call('fetch', topic === undefined ? [group] : [group, topic]) as Promise<CommittedOffset[]>;
  }
  describe(group: string): Promise<GroupDescription> {
    return this.call('describe', [group]) as Promise<GroupDescription>;
  }
  list(): Promise<string[]> {
    return this.call('list', []) as Promise<string[]>;
  }

  private async call(op: Op, args: unknown[]): Promise<unknown> {
    if (this.inFlight >= this.maxInFlight) {
      throw new CoordinatorNotAvailableError(`more than ${this.maxInFlight} group calls are waiting for the coordinator; retry shortly`);
    }
    this.inFlight++;
    let msg: Msg;
    try {
      msg = await this.nc.request(this.subject, encoder.encode(JSON.stringify({ op, args })), { timeout: this.timeoutMs });
    } catch (err) {
      throw unreachable(err);
    } finally {
      this.inFlight--;
    }
    const reply = JSON.parse(decoder.decode(msg.data)) as Reply;
    if ('error' in reply) throw revive(reply.error);
    return reply.ok;
  }
}

function unreachable(err: unknown): BrookError {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'CONNECTION_CLOSED' || code === 'CONNECTION_DRAINING') return new EngineClosedError();
  // '503' no responders: nobody holds the lease; 'TIMEOUT': the holder died mid-call.
  const why = code === '503' ? 'no node is serving consumer groups right now' : 'the group coordinator did not answer in time';
  return new CoordinatorNotAvailableError(`${why}; retry shortly`, { cause: err });
}

/** The same error class the coordinator threw, so callers' `instanceof` checks keep working. */
export function revive(body: ErrorBody): BrookError {
  const f = body.fields;
  const str = (k: string): string => (typeof f[k] === 'string' ? (f[k] as string) : '');
  const num = (k: string): number => (typeof f[k] === 'number' ? (f[k] as number) : -1);
  switch (body.code) {
    case 'UNKNOWN_MEMBER':
      return new UnknownMemberError(str('group'), str('memberId'));
    case 'STALE_GENERATION':
      return new StaleGenerationError(str('group'), num('given'), num('current'));
    case 'NOT_PARTITION_OWNER':
      return new NotPartitionOwnerError(str('group'), str('memberId'), str('topic'), num('partition'));
    case 'TOPIC_NOT_FOUND':
      return new TopicNotFoundError(str('topic'));
    case 'PARTITION_NOT_FOUND':
      return new PartitionNotFoundError(str('topic'), num('partition'));
    case 'INVALID_ARGUMENT':
      return new InvalidArgumentError(body.message);
    case 'COORDINATOR_NOT_AVAILABLE':
      return new CoordinatorNotAvailableError(body.message);
    default:
      return new StorageError(`group coordinator: ${body.message}`);
  }
}
