/** Client frames of `/v1/realtime` (docs/channels.md), parsed with zod at the edge. */
import { z } from 'zod';

const id = z.union([z.string().max(256), z.int()]);
const channel = z.string().min(1).max(255);
const since = z.strictObject({ offset: z.int().min(-1), epoch: z.string().max(64).optional() });

export const clientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('subscribe'),
    id,
    // `filter` is validated by the hub (RowFilter.parse), so its errors carry INVALID_FILTER per channel.
    channels: z.array(z.strictObject({ channel, since: since.optional(), filter: z.unknown().optional() })).min(1).max(100),
  }),
  z.strictObject({ type: z.literal('unsubscribe'), id, channels: z.array(channel).min(1).max(100) }),
  z.strictObject({ type: z.literal('publish'), id, channel, data: z.unknown() }),
  z.strictObject({ type: z.literal('presence'), id, channel }),
  z.strictObject({ type: z.literal('history'), id, channel, since: z.int().min(-1).optional(), limit: z.int().positive().optional() }),
  z.strictObject({ type: z.literal('refresh'), id, token: z.string().min(1).max(8192) }),
  z.strictObject({ type: z.literal('ping'), id: id.optional() }),
]);

export type ClientFrame = z.infer<typeof clientFrameSchema>;
export type FrameId = z.infer<typeof id>;

/** Why a frame was refused, in one line. */
export function frameProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid frame';
  const path = issue.path.map(String).join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}
