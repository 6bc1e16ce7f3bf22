/**
 * The `brook` command line. `bin/brook.js` calls `main(process.argv)` and turns a rejection into
 * its message on stderr and exit status 1.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { cdcSnapshot, cdcStatus } from './commands/cdc.js';
import { consume } from './commands/consume.js';
import { describeGroup, listGroups, parseResetTarget, resetGroup, type ResetTarget } from './commands/groups.js';
import { produce } from './commands/produce.js';
import { describeQueue, enqueue, enqueueValues, listDeadLetters, listQueues, redrive, redriveSelection } from './commands/queues.js';
import { DEFAULT_HEAP_HEADROOM_MB, start } from './commands/start.js';
import { tail } from './commands/tail.js';
import { createTopic, deleteTopic, describeTopic, listTopics } from './commands/topics.js';
import { DEFAULT_URL } from './http-client.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function nonNegativeInt(what: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
      throw new InvalidArgumentError(`${what} must be a non-negative integer`);
    }
    return Number(raw);
  };
}

function positiveInt(what: string) {
  return (raw: string): number => {
    const value = nonNegativeInt(what)(raw);
    if (value === 0) throw new InvalidArgumentError(`${what} must be at least 1`);
    return value;
  };
}

/** What every command that talks to a server is given. */
interface ClientOpts {
  url: string;
  token?: string;
}

/** A subcommand of `parent` that talks to a server: `--url` and `--token`. */
function client(parent: Command, nameAndArgs: string, description: string, options: { isDefault?: boolean } = {}): Command {
  return parent
    .command(nameAndArgs, options)
    .description(description)
    .addOption(new Option('--url <url>', 'Brook server URL').env('BROOK_URL').default(DEFAULT_URL))
    .addOption(new Option('--token <token>', 'bearer token, for a server with auth on').env('BROOK_TOKEN'));
}

function resetTarget(raw: string): ResetTarget {
  const target = parseResetTarget(raw);
  if (target === undefined) {
    throw new InvalidArgumentError('expected earliest, latest, offset:N or timestamp:T (ms since the epoch, or an ISO date)');
  }
  return target;
}

/** Runs `read` until it ends, Ctrl-C, or a closed stdout (`brook consume t | head`), all with status 0. */
async function untilInterrupted(read: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.stdout.once('error', stop);
  try {
    await read(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.stdout.off('error', stop);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runs the CLI with `argv` as in `process.argv` (node, script, arguments...). */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('brook')
    .description('Brook: a durable, replayable event log with an HTTP API')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Commands that talk to a server take --url (env BROOK_URL, default
${DEFAULT_URL}) and, when the server runs with auth, --token (env
BROOK_TOKEN), sent as "Authorization: Bearer <token>".

Examples:
  $ brook start
  $ brook topics create orders --partitions 3
  $ echo '{"item":"book"}' | brook produce orders
  $ brook tail orders
  $ brook groups describe billing
  $ brook cdc status`,
    );

  program
    .command('start')
    .description('run the server (embedded engine by default, or on NATS JetStream)')
    .option('--port <port>', 'port to listen on (0 picks a free one)', nonNegativeInt('port'), 7420)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--data <dir>', 'data directory', './.brook')
    .option('--no-auto-create-topics', 'answer 404 when producing to an unknown topic instead of creating it')
    .addOption(new Option('--log-level <level>', 'log level (JSON logs on stderr)').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--auth-secret <secret>', 'verify HS256 bearer tokens with this secret (32+ bytes)').env('BROOK_AUTH_SECRET'))
    .option('--auth-jwks <file|url>', 'verify RS256 bearer tokens with the keys of this JWKS file or URL')
    .option('--insecure-no-auth', 'allow serving a non-loopback host with authentication off')
    .option('--config <file>', 'JSON config file (auth, quotas); flags take precedence')
    .addOption(new Option('--engine <engine>', 'storage engine').choices(['embedded', 'jetstream']).default('embedded'))
    .addOption(new Option('--nats <urls>', 'NATS servers for --engine jetstream (comma-separated)').env('BROOK_NATS').default('nats://127.0.0.1:4222'))
    .addOption(new Option('--queue-backend <backend>', 'work queues: engine (internal topics) or native (JetStream streams; --engine jetstream only)').choices(['engine', 'native']).default('engine'))
    .option('--nats-prefix <prefix>', 'prefix of the JetStream streams and KV buckets Brook creates', 'BROOK')
    .option('--nats-creds <file>', 'NATS credentials file (user JWT + NKey seed)')
    .option('--nats-tls-ca <file>', 'CA certificate to verify the NATS servers with (implies TLS)')
    .option('--nats-tls-cert <file>', 'client certificate for NATS (with --nats-tls-key; implies TLS)')
    .option('--nats-tls-key <file>', 'private key of --nats-tls-cert')
    .option('--channels-cluster', 'with --engine jetstream: every node serves every channel (shared offsets, history, presence)')
    .option('--presence-ttl-ms <ms>', 'with --channels-cluster: how long a presence entry outlives its node (default 30000)', positiveInt('presence TTL'))
    .option(
      '--group-takeover-delay-ms <ms>',
      'with --engine jetstream: how long a node taking the consumer-group coordinator over waits before serving joins, at least the longest member session timeout (default 10000; 0 = at once)',
      nonNegativeInt('group takeover delay'),
    )
    .option('--cdc-url <url>', 'capture row changes from this PostgreSQL database (postgres://...)')
    .option('--cdc-tables <list>', 'tables to capture with --cdc-url, comma-separated schema.table')
    .option('--cdc-schemas <list>', 'schemas to capture whole with --cdc-url, comma-separated')
    .option('--cdc-slot <name>', 'replication slot of the CDC source (created if missing)', 'brook_cdc')
    .option('--cdc-publication <name>', 'publication of the CDC source (created if missing)', 'brook_cdc')
    .option('--cdc-topic-prefix <prefix>', 'CDC topics are <prefix>.<schema>.<table>', 'cdc')
    .option(
      '--heap-headroom-mb <mb>',
      'old-generation room kept between full garbage collections (fewer latency stalls; 0 = V8 defaults; docs/runtime.md)',
      nonNegativeInt('heap headroom'),
      DEFAULT_HEAP_HEADROOM_MB,
    )
    .action(
      async (opts: {
        port: number;
        host: string;
        data: string;
        autoCreateTopics: boolean;
        logLevel: (typeof LOG_LEVELS)[number];
        authSecret?: string;
        authJwks?: string;
        insecureNoAuth?: boolean;
        config?: string;
        engine: 'embedded' | 'jetstream';
        queueBackend: 'engine' | 'native';
        nats: string;
        natsPrefix: string;
        natsCreds?: string;
        natsTlsCa?: string;
        natsTlsCert?: string;
        natsTlsKey?: string;
        channelsCluster?: boolean;
        presenceTtlMs?: number;
        groupTakeoverDelayMs?: number;
        cdcUrl?: string;
        cdcTables?: string;
        cdcSchemas?: string;
        cdcSlot: string;
        cdcPublication: string;
        cdcTopicPrefix: string;
        heapHeadroomMb: number;
      }) => {
        await start(
          {
            port: opts.port,
            host: opts.host,
            data: opts.data,
            autoCreateTopics: opts.autoCreateTopics,
            logLevel: opts.logLevel,
            authSecret: opts.authSecret,
            authJwks: opts.authJwks,
            insecureNoAuth: opts.insecureNoAuth,
            config: opts.config,
            engine: opts.engine,
            queueBackend: opts.queueBackend,
            nats: opts.nats,
            natsPrefix: opts.natsPrefix,
            natsCreds: opts.natsCreds,
            natsTlsCa: opts.natsTlsCa,
            natsTlsCert: opts.natsTlsCert,
            natsTlsKey: opts.natsTlsKey,
            channelsCluster: opts.channelsCluster,
            presenceTtlMs: opts.presenceTtlMs,
            groupTakeoverDelayMs: opts.groupTakeoverDelayMs,
            heapHeadroomMb: opts.heapHeadroomMb,
            cdc:
              opts.cdcUrl === undefined
                ? undefined
                : {
                    url: opts.cdcUrl,
                    tables: opts.cdcTables,
                    schemas: opts.cdcSchemas,
                    slot: opts.cdcSlot,
                    publication: opts.cdcPublication,
                    topicPrefix: opts.cdcTopicPrefix,
                  },
          },
          process.stdout,
        );
      },
    );

  client(program, 'produce <topic>', 'send one record per stdin line (JSON when the line parses, else a string)')
    .option('--key-field <field>', 'use this field of each JSON object as the record key')
    .option('--partition <n>', 'append to this partition instead of routing by key', nonNegativeInt('partition'))
    .action(async (topic: string, opts: ClientOpts & { keyField?: string; partition?: number }) => {
      await produce(topic, opts, process.stdin);
    });

  client(program, 'consume <topic>', 'print one JSON line per record, following new records until --max or Ctrl-C')
    .option('--partition <n>', 'only this partition', nonNegativeInt('partition'))
    .option('--from-beginning', 'start at the earliest offset instead of the latest')
    .option('--max <n>', 'stop after this many records', positiveInt('max'))
    .option('--group <group>', "start from the group's committed offsets and commit after printing")
    .option('--follow', 'wait for new records once caught up (the default)')
    .option('--no-follow', 'stop once every partition is caught up')
    .addHelpText(
      'after',
      `
Each line: {"partition","offset","key","value","headers","timestamp"}.

Examples:
  $ brook consume orders --from-beginning --no-follow > orders.jsonl
  $ brook consume orders --group billing --max 100`,
    )
    .action(
      async (
        topic: string,
        opts: ClientOpts & { partition?: number; fromBeginning?: boolean; max?: number; group?: string; follow?: boolean },
      ) => {
        await untilInterrupted((signal) => consume(topic, opts, process.stdout, signal));
      },
    );

  client(program, 'tail <topic>', 'follow a topic from its latest records, printed for people (Ctrl-C to stop)')
    .option('--partition <n>', 'only this partition', nonNegativeInt('partition'))
    .option('--from-beginning', 'start at the earliest offset instead of the latest')
    .option('--max <n>', 'stop after this many records', positiveInt('max'))
    .addHelpText(
      'after',
      `
One block per record: time, partition, offset and key, then headers and the
value as indented JSON. Use \`brook consume\` for one JSON line per record.`,
    )
    .action(async (topic: string, opts: ClientOpts & { partition?: number; fromBeginning?: boolean; max?: number }) => {
      await untilInterrupted((signal) => tail(topic, opts, process.stdout, signal));
    });

  const topics = program.command('topics').description('list, create, describe and delete topics');
  client(topics, 'list', 'list topics', { isDefault: true }).action(async (opts: ClientOpts) => listTopics(opts, process.stdout));
  client(topics, 'create <name>', 'create a topic')
    .option('--partitions <n>', 'number of partitions', positiveInt('partitions'), 1)
    .option('--config <key=value>', 'topic setting, e.g. retention_ms=3600000 (repeatable)', collect, [])
    .action(async (name: string, opts: ClientOpts & { partitions: number; config: string[] }) =>
      createTopic(opts, name, opts, process.stdout),
    );
  client(topics, 'describe <name>', 'show partitions, watermarks and settings').action(async (name: string, opts: ClientOpts) =>
    describeTopic(opts, name, process.stdout),
  );
  client(topics, 'delete <name>', 'delete a topic and its data').action(async (name: string, opts: ClientOpts) =>
    deleteTopic(opts, name),
  );

  const groups = program.command('groups').description('list, describe and reset consumer groups (admin)');
  client(groups, 'list', 'list groups with members or committed offsets', { isDefault: true }).action(async (opts: ClientOpts) =>
    listGroups(opts, process.stdout),
  );
  client(groups, 'describe <group>', 'show members, assignments, committed offsets and lag per partition')
    .option('--json', "print the server's JSON answer instead of tables")
    .addHelpText('after', '\nLAG is the high watermark minus the committed offset: records not yet read.')
    .action(async (group: string, opts: ClientOpts & { json?: boolean }) => describeGroup(opts, group, opts, process.stdout));
  client(groups, 'reset <group>', "move a group's committed offsets on a topic (refused while members read it)")
    .requiredOption('--topic <topic>', 'the topic whose offsets move')
    .requiredOption('--to <target>', 'earliest, latest, offset:N or timestamp:MS (ms since the epoch, or an ISO date)', resetTarget)
    .option('--partition <n>', 'only this partition (default: every partition)', nonNegativeInt('partition'))
    .addHelpText(
      'after',
      `
An offset outside a partition's range is clamped to it. timestamp:T moves to
the first record at or after T (the end when there is none).

Examples:
  $ brook groups reset billing --topic orders --to earliest
  $ brook groups reset billing --topic orders --to timestamp:2024-11-23T00:00:00Z
  $ brook groups reset billing --topic orders --partition 2 --to offset:1200`,
    )
    .action(async (group: string, opts: ClientOpts & { topic: string; to: ResetTarget; partition?: number }) =>
      resetGroup(opts, group, opts, process.stdout),
    );

  const queues = program.command('queues').description('list, describe and feed work queues; list and redrive dead letters');
  client(queues, 'list', 'list queues with depth, in flight, delayed and dead letters', { isDefault: true }).action(async (opts: ClientOpts) =>
    listQueues(opts, process.stdout),
  );
  client(queues, 'describe <queue>', 'show counts and configuration')
    .option('--json', "print the server's JSON answer")
    .action(async (queue: string, opts: ClientOpts & { json?: boolean }) => describeQueue(opts, queue, opts, process.stdout));
  client(queues, 'enqueue <queue> [values...]', 'enqueue JSON values (arguments, or one per line on stdin); prints their ids')
    .option('--delay-ms <ms>', 'deliver no earlier than this', nonNegativeInt('delay-ms'))
    .option('--priority <p>', 'priority 0-9 (higher first)', nonNegativeInt('priority'))
    .option('--key <key>', 'key (one at a time and in order under key-sticky balance)')
    .addHelpText(
      'after',
      `
Examples:
  $ brook queues enqueue mail '{"to":"a@b.c"}'
  $ jq -c '.[]' jobs.json | brook queues enqueue jobs --priority 5`,
    )
    .action(async (queue: string, values: string[], opts: ClientOpts & { delayMs?: number; priority?: number; key?: string }) =>
      enqueue(opts, queue, await enqueueValues(values, process.stdin), opts, process.stdout),
    );
  client(queues, 'dead-letters <queue>', 'list dead letters, oldest first')
    .option('--limit <n>', 'at most this many (max 1000)', positiveInt('limit'), 100)
    .option('--json', 'one JSON line per dead letter')
    .action(async (queue: string, opts: ClientOpts & { limit: number; json?: boolean }) => listDeadLetters(opts, queue, opts, process.stdout));
  client(queues, 'redrive <queue>', 'enqueue dead letters again as new messages (admin)')
    .option('--all', 'every dead letter')
    .option('--ids <ids>', 'these dead letters (comma-separated ids)')
    .option('--older-than-ms <ms>', 'those dead-lettered at least this long ago', nonNegativeInt('older-than-ms'))
    .action(async (queue: string, opts: ClientOpts & { all?: boolean; ids?: string; olderThanMs?: number }) =>
      redrive(opts, queue, redriveSelection(opts), process.stdout),
    );

  const cdc = program.command('cdc').description('status of the PostgreSQL CDC sources; on-demand snapshots (admin)');
  client(cdc, 'status [source]', 'every source (state, slot, confirmed LSN, lag, snapshot), or one in detail', { isDefault: true })
    .option('--json', "print the server's JSON answer")
    .action(async (source: string | undefined, opts: ClientOpts & { json?: boolean }) => cdcStatus(opts, source, opts, process.stdout));
  client(cdc, 'snapshot <source> <tables...>', 're-read tables (schema.table) into their topics while streaming goes on')
    .addOption(new Option('--mode <mode>', 'incremental: chunks between watermarks, streaming never stops; blocking: streaming holds while the tables are read').choices(['incremental', 'blocking']).default('incremental'))
    .option('--wait', 'follow the snapshot until it completes (exit status 1 if it fails)')
    .addHelpText(
      'after',
      `
One snapshot runs per source at a time; another is refused (CDC_SNAPSHOT_IN_PROGRESS).
An incremental snapshot resumes from its last chunk after a restart.

Examples:
  $ brook cdc snapshot app public.orders --wait
  $ brook cdc snapshot app public.orders public.users --mode blocking`,
    )
    .action(async (source: string, tables: string[], opts: ClientOpts & { mode: 'incremental' | 'blocking'; wait?: boolean }) =>
      untilInterrupted((signal) => cdcSnapshot(opts, source, tables, opts, process.stdout, signal)),
    );

  await program.parseAsync(argv);
}
