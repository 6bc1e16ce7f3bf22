import { z } from 'zod';
import {
  TopicNotFoundError,
  type CommittedOffset,
  type Engine,
  type JoinGroupRequest,
  type MemberFence,
  type OffsetCommit,
  type PartitionDescription,
} from '../../engine/index.js';
import { authorize, can, requireAdmin } from '../auth/index.js';
import { HttpError } from '../errors.js';
import { topicParam } from '../params.js';
import { json, NO_CONTENT } from '../reply.js';
import type { Router } from '../router.js';
import { assignmentWire, committedOffsetWire, groupWire } from '../wire.js';
import type { RouteDeps } from './deps.js';

const commitSchema = z.strictObject({
  offsets: z.array(
    z.strictObject({
      topic: z.string(),
      partition: z.int().nonnegative(),
      offset: z.int().nonnegative(),
      metadata: z.string().optional(),
    }),
  ),
  // Fencing: given together, the commit is refused unless the member owns every partition.
  member_id: z.string().optional(),
  generation: z.int().nonnegative().optional(),
});

const joinSchema = z.strictObject({
  topics: z.array(z.string()).min(1),
  member_id: z.string().optional(),
  client_id: z.string().optional(),
  session_timeout_ms: z.int().positive().optional(),
  strategy: z.enum(['range', 'round-robin', 'sticky']).optional(),
});

const resetSchema = z.strictObject({
  topic: z.string(),
  /** Without it, every partition of the topic. */
  partition: z.int().nonnegative().optional(),
  to: z.union([
    z.enum(['earliest', 'latest']),
    z.strictObject({ offset: z.int().nonnegative() }),
    z.strictObject({ timestamp: z.int().nonnegative() }),
  ]),
});
type ResetTarget = z.infer<typeof resetSchema>['to'];

/** Most offsets one commit request may carry. */
const MAX_COMMITS_PER_REQUEST = 10_000;

/**
 * Groups have no permissions of their own: committing, fetching offsets and joining need `read`
 * on the topics involved (checked before the engine sees them); listing and describing groups,
 * which show every member and topic, are admin work. Heartbeat and leave need only a verified
 * caller: the member id, a random UUID handed out by join, is the capability.
 */
export function groupRoutes(router: Router, { engine }: RouteDeps): void {
  router.add('GET', '/v1/groups', async (ctx) => {
    requireAdmin(ctx.principal, 'listing groups');
    return json(200, { groups: await engine.listGroups() });
  });

  router.add('GET', '/v1/groups/:group', async (ctx) => {
    requireAdmin(ctx.principal, 'describing groups');
    const group = await engine.describeGroup(ctx.param('group'));
    return json(200, { ...groupWire(group), offsets: await offsetsWithLag(engine, group.offsets) });
  });

  // Kafka's `kafka-consumer-groups --reset-offsets`: an operator moves a stopped group. Refused
  // while a live member reads the topic, which would overwrite the reset with its next commit.
  // The check and the commit are two steps: a member joining in between is not stopped, as with
  // any unfenced commit; the refusal is a guard against mistakes, not a lock.
  router.add('POST', '/v1/groups/:group/offsets/reset', async (ctx) => {
    requireAdmin(ctx.principal, 'resetting group offsets');
    const group = ctx.param('group');
    const body = await ctx.body(resetSchema);
    const topic = topicParam(body.topic);
    const partitions =
      body.partition === undefined
        ? (await engine.describeTopic(topic)).partitions
        : [await engine.watermarks(topic, body.partition)];
    const live = (await engine.describeGroup(group)).members.filter((m) => m.topics.includes(topic));
    if (live.length > 0) {
      throw new HttpError(
        'GROUP_NOT_EMPTY',
        `group ${JSON.stringify(group)} has ${live.length} live member${live.length === 1 ? '' : 's'} reading topic ` +
          `${JSON.stringify(topic)} (${live.map((m) => m.memberId).join(', ')}); stop them, or wait for their sessions to expire`,
      );
    }
    const commits = await Promise.all(
      partitions.map(async (p) => ({ topic, partition: p.partition, offset: await resetOffset(engine, topic, p, body.to) })),
    );
    await engine.commitOffsets(group, commits);
    const reset = new Set(commits.map((c) => c.partition));
    const offsets = (await engine.fetchOffsets(group, topic)).filter((o) => reset.has(o.partition));
    return json(200, { offsets: offsets.map(committedOffsetWire) });
  });

  router.add('POST', '/v1/groups/:group/offsets', async (ctx) => {
    const group = ctx.param('group');
    const body = await ctx.body(commitSchema);
    if (body.offsets.length > MAX_COMMITS_PER_REQUEST) {
      throw new HttpError('MESSAGE_TOO_LARGE', `at most ${MAX_COMMITS_PER_REQUEST} offsets per commit`);
    }
    if ((body.member_id === undefined) !== (body.generation === undefined)) {
      throw new HttpError('INVALID_REQUEST', 'member_id and generation go together');
    }
    const commits: OffsetCommit[] = body.offsets.map((o) => {
      topicParam(o.topic);
      authorize(ctx.principal, 'read', o.topic);
      return o.metadata === undefined
        ? { topic: o.topic, partition: o.partition, offset: o.offset }
        : { topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata };
    });
    const fence: MemberFence | undefined =
      body.member_id !== undefined && body.generation !== undefined
        ? { memberId: body.member_id, generation: body.generation }
        : undefined;
    await engine.commitOffsets(group, commits, fence);
    return NO_CONTENT;
  });

  router.add('GET', '/v1/groups/:group/offsets', async (ctx) => {
    const topic = ctx.query.get('topic');
    if (topic !== null) authorize(ctx.principal, 'read', topicParam(topic));
    const offsets = await engine.fetchOffsets(ctx.param('group'), topic ?? undefined);
    return json(200, { offsets: offsets.filter((o) => can(ctx.principal, 'read', o.topic)).map(committedOffsetWire) });
  });

  router.add('POST', '/v1/groups/:group/members', async (ctx) => {
    const body = await ctx.body(joinSchema);
    for (const topic of body.topics) authorize(ctx.principal, 'read', topicParam(topic));
    const request: { -readonly [K in keyof JoinGroupRequest]: JoinGroupRequest[K] } = {
      group: ctx.param('group'),
      topics: body.topics,
    };
    if (body.member_id !== undefined) request.memberId = body.member_id;
    if (body.client_id !== undefined) request.clientId = body.client_id;
    if (body.session_timeout_ms !== undefined) request.sessionTimeoutMs = body.session_timeout_ms;
    if (body.strategy !== undefined) request.strategy = body.strategy;
    return json(200, assignmentWire(await engine.joinGroup(request)));
  });

  router.add('POST', '/v1/groups/:group/members/:member/heartbeat', async (ctx) =>
    json(200, assignmentWire(await engine.heartbeat(ctx.param('group'), ctx.param('member')))),
  );

  router.add('DELETE', '/v1/groups/:group/members/:member', async (ctx) => {
    await engine.leaveGroup(ctx.param('group'), ctx.param('member'));
    return NO_CONTENT;
  });
}

/**
 * Where a reset puts one partition. An explicit offset outside the partition's readable range is
 * clamped to it, as Kafka does: one `{"offset": n}` applied to every partition would otherwise
 * fail on the shorter ones.
 */
async function resetOffset(engine: Engine, topic: string, p: PartitionDescription, to: ResetTarget): Promise<number> {
  if (to === 'earliest') return p.lowWatermark;
  if (to === 'latest') return p.highWatermark;
  if ('offset' in to) return Math.min(Math.max(to.offset, p.lowWatermark), p.highWatermark);
  return engine.offsetForTimestamp(topic, p.partition, to.timestamp);
}

/**
 * Committed offsets with the partition's high watermark and the lag (high watermark − committed
 * offset, never negative). Both are null for a topic deleted since the group described itself.
 */
async function offsetsWithLag(engine: Engine, offsets: readonly CommittedOffset[]): Promise<Record<string, unknown>[]> {
  const highs = new Map<string, Map<number, number> | null>();
  for (const topic of new Set(offsets.map((o) => o.topic))) {
    try {
      const described = await engine.describeTopic(topic);
      highs.set(topic, new Map(described.partitions.map((p) => [p.partition, p.highWatermark])));
    } catch (err) {
      if (!(err instanceof TopicNotFoundError)) throw err;
      highs.set(topic, null);
    }
  }
  return offsets.map((o) => {
    const high = highs.get(o.topic)?.get(o.partition);
    return {
      ...committedOffsetWire(o),
      high_watermark: high ?? null,
      lag: high === undefined ? null : Math.max(0, high - o.offset),
    };
  });
}
