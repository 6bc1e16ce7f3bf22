/**
 * Namespace configuration: channels are configured by the prefix before their first `:`
 * (docs/channels.md, "Channels and namespaces"). Parsed with zod at the edge (config files, options).
 */
import { z } from 'zod';
import { DEFAULT_HISTORY_TTL_MS, DEFAULT_MAX_PRESENCE, DEFAULT_TOPIC_HISTORY, MAX_HISTORY_SIZE } from './defaults.js';
import { ChannelError } from './errors.js';

export const namespaceSchema = z.strictObject({
  name: z.string().max(64).regex(/^[A-Za-z0-9._-]*$/, 'a namespace name uses [A-Za-z0-9._-]'),
  history: z
    .strictObject({
      size: z.int().min(0).max(MAX_HISTORY_SIZE),
      ttlMs: z.int().positive().optional(),
      durable: z.boolean().optional(),
    })
    .optional(),
  presence: z.boolean().optional(),
  joinLeave: z.boolean().optional(),
  maxPresence: z.int().positive().max(100_000).optional(),
  slowClient: z.enum(['disconnect', 'skip']).optional(),
  clientPublish: z.boolean().optional(),
  source: z.literal('topic').optional(),
});

export const channelsConfigSchema = z.strictObject({ namespaces: z.array(namespaceSchema).max(1000) });

export type NamespaceInput = z.input<typeof namespaceSchema>;
export type ChannelsConfigInput = z.input<typeof channelsConfigSchema>;

/** What a subscriber that cannot keep up gets (docs/channels.md, "Slow clients"). */
export type SlowClientPolicy = 'disconnect' | 'skip';

export interface Namespace {
  readonly name: string;
  /** Messages kept per channel; 0 = no history (recovery always answers recovered:false). */
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly durable: boolean;
  readonly presence: boolean;
  readonly joinLeave: boolean;
  readonly maxPresence: number;
  readonly slowClient: SlowClientPolicy;
  readonly clientPublish: boolean;
  /** Channels are log topics (`<ns>:<topic>[~<partition>]`). */
  readonly topicSource: boolean;
}

/** The namespaces a server has when none are configured. */
export const DEFAULT_NAMESPACES: readonly NamespaceInput[] = [
  { name: 'chat', history: { size: 100, ttlMs: 300_000 }, presence: true, joinLeave: true },
  { name: 'user', history: { size: 100, ttlMs: 300_000 } },
  { name: 'topic', source: 'topic' },
];

export function resolveNamespace(input: NamespaceInput): Namespace {
  const n = namespaceSchema.parse(input);
  if (n.source === 'topic' && n.history?.durable) {
    throw new ChannelError('INVALID_CHANNEL', `namespace "${n.name}": a topic-backed namespace is durable by nature; drop history.durable`);
  }
  if (n.joinLeave && !n.presence) throw new ChannelError('INVALID_CHANNEL', `namespace "${n.name}": joinLeave needs presence`);
  return {
    name: n.name,
    historySize: n.history?.size ?? (n.source === 'topic' ? DEFAULT_TOPIC_HISTORY : 0),
    historyTtlMs: n.history?.ttlMs ?? DEFAULT_HISTORY_TTL_MS,
    durable: n.history?.durable ?? false,
    presence: n.presence ?? false,
    joinLeave: n.joinLeave ?? false,
    maxPresence: n.maxPresence ?? DEFAULT_MAX_PRESENCE,
    slowClient: n.slowClient ?? 'disconnect',
    clientPublish: n.source === 'topic' ? false : (n.clientPublish ?? true),
    topicSource: n.source === 'topic',
  };
}

/** Parses a whole configuration; throws a plain Error naming the problem (startup-time). */
export function resolveNamespaces(inputs: readonly NamespaceInput[]): Map<string, Namespace> {
  const out = new Map<string, Namespace>();
  for (const input of inputs) {
    const parsed = namespaceSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`invalid channel namespace ${JSON.stringify(input)}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
    }
    const ns = resolveNamespace(parsed.data);
    if (out.has(ns.name)) throw new Error(`channel namespace "${ns.name}" is configured twice`);
    out.set(ns.name, ns);
  }
  return out;
}
