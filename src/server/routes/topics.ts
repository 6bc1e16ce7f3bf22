import { z } from 'zod';
import type { TopicConfigInput } from '../../engine/index.js';
import { authorize, can, requireAdmin } from '../auth/index.js';
import { topicParam } from '../params.js';
import { json, NO_CONTENT } from '../reply.js';
import type { Router } from '../router.js';
import { topicWire } from '../wire.js';
import type { RouteDeps } from './deps.js';

// Ranges are the engine's to check (one place); the schema checks shapes and names.
const count = z.int().nonnegative();
const createTopicSchema = z.strictObject({
  name: z.string(),
  partitions: count.optional(),
  config: z
    .strictObject({
      retention_ms: count.nullable().optional(),
      retention_bytes: count.nullable().optional(),
      cleanup_policy: z.enum(['delete', 'compact']).optional(),
      delete_retention_ms: count.optional(),
      durability: z.enum(['fsync', 'os']).optional(),
      segment_bytes: count.optional(),
      segment_ms: count.optional(),
      max_record_bytes: count.optional(),
    })
    .optional(),
});

type CreateTopicBody = z.infer<typeof createTopicSchema>;

function configInput(body: CreateTopicBody): TopicConfigInput {
  const c = body.config ?? {};
  const input: { -readonly [K in keyof TopicConfigInput]: TopicConfigInput[K] } = {};
  if (body.partitions !== undefined) input.partitions = body.partitions;
  if (c.retention_ms !== undefined) input.retentionMs = c.retention_ms;
  if (c.retention_bytes !== undefined) input.retentionBytes = c.retention_bytes;
  if (c.cleanup_policy !== undefined) input.cleanupPolicy = c.cleanup_policy;
  if (c.delete_retention_ms !== undefined) input.deleteRetentionMs = c.delete_retention_ms;
  if (c.durability !== undefined) input.durability = c.durability;
  if (c.segment_bytes !== undefined) input.segmentBytes = c.segment_bytes;
  if (c.segment_ms !== undefined) input.segmentMs = c.segment_ms;
  if (c.max_record_bytes !== undefined) input.maxRecordBytes = c.max_record_bytes;
  return input;
}

/**
 * Creating and deleting topics is admin work; describing needs `read` on the topic, checked
 * before the lookup so a forbidden topic is refused alike whether it exists or not; the list
 * holds only topics the caller may read.
 */
export function topicRoutes(router: Router, { engine, metrics }: RouteDeps): void {
  router.add('POST', '/v1/topics', async (ctx) => {
    requireAdmin(ctx.principal, 'creating topics');
    const body = await ctx.body(createTopicSchema);
    return json(201, topicWire(await engine.createTopic(body.name, configInput(body))));
  });

  router.add('GET', '/v1/topics', async (ctx) => {
    const topics = await engine.listTopics();
    return json(200, { topics: topics.filter((t) => can(ctx.principal, 'read', t.name)).map(topicWire) });
  });

  router.add('GET', '/v1/topics/:topic', async (ctx) => {
    const topic = topicParam(ctx.param('topic'));
    authorize(ctx.principal, 'read', topic);
    return json(200, topicWire(await engine.describeTopic(topic)));
  });

  router.add('DELETE', '/v1/topics/:topic', async (ctx) => {
    requireAdmin(ctx.principal, 'deleting topics');
    const topic = topicParam(ctx.param('topic'));
    await engine.deleteTopic(topic);
    metrics.forgetTopic(topic);
    return NO_CONTENT;
  });
}
