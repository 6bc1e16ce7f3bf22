/**
 * The `brook` command line. `bin/brook.js` calls `main(process.argv)` and turns a rejection into
 * its message on stderr and exit status 1.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { consume } from './commands/consume.js';
import { produce } from './commands/produce.js';
import { start } from './commands/start.js';
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

const urlOption = (): Option =>
  new Option('--url <url>', 'Brook server URL').env('BROOK_URL').default(DEFAULT_URL);

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runs the CLI with `argv` as in `process.argv` (node, script, arguments...). */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('brook')
    .description('Brook: a durable, replayable event log with an HTTP API')
    .showHelpAfterError();

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
    .option('--nats-prefix <prefix>', 'prefix of the JetStream streams and KV buckets Brook creates', 'BROOK')
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
        nats: string;
        natsPrefix: string;
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
            nats: opts.nats,
            natsPrefix: opts.natsPrefix,
          },
          process.stdout,
        );
      },
    );

  program
    .command('produce <topic>')
    .description('send one record per stdin line (JSON when the line parses, else a string)')
    .addOption(urlOption())
    .option('--key-field <field>', 'use this field of each JSON object as the record key')
    .option('--partition <n>', 'append to this partition instead of routing by key', nonNegativeInt('partition'))
    .action(async (topic: string, opts: { url: string; keyField?: string; partition?: number }) => {
      await produce(topic, opts, process.stdin);
    });

  program
    .command('consume <topic>')
    .description('print one JSON line per record, following new records until --max or Ctrl-C')
    .addOption(urlOption())
    .option('--partition <n>', 'only this partition', nonNegativeInt('partition'))
    .option('--from-beginning', 'start at the earliest offset instead of the latest')
    .option('--max <n>', 'stop after this many records', positiveInt('max'))
    .option('--group <group>', "start from the group's committed offsets and commit after printing")
    .action(async (topic: string, opts: { url: string; partition?: number; fromBeginning?: boolean; max?: number; group?: string }) => {
      const controller = new AbortController();
      const onSigint = (): void => controller.abort();
      process.once('SIGINT', onSigint);
      // A closed pipe (`brook consume t | head`) ends consuming quietly.
      const onOutputError = (): void => controller.abort();
      process.stdout.once('error', onOutputError);
      try {
        await consume(topic, opts, process.stdout, controller.signal);
      } finally {
        process.off('SIGINT', onSigint);
        process.stdout.off('error', onOutputError);
      }
    });

  const topics = program.command('topics').description('list, create, describe and delete topics');
  topics
    .command('list', { isDefault: true })
    .description('list topics')
    .addOption(urlOption())
    .action(async (opts: { url: string }) => listTopics(opts.url, process.stdout));
  topics
    .command('create <name>')
    .description('create a topic')
    .addOption(urlOption())
    .option('--partitions <n>', 'number of partitions', positiveInt('partitions'), 1)
    .option('--config <key=value>', 'topic setting, e.g. retention_ms=3600000 (repeatable)', collect, [])
    .action(async (name: string, opts: { url: string; partitions: number; config: string[] }) =>
      createTopic(opts.url, name, opts, process.stdout),
    );
  topics
    .command('describe <name>')
    .description('show partitions, watermarks and settings')
    .addOption(urlOption())
    .action(async (name: string, opts: { url: string }) => describeTopic(opts.url, name, process.stdout));
  topics
    .command('delete <name>')
    .description('delete a topic and its data')
    .addOption(urlOption())
    .action(async (name: string, opts: { url: string }) => deleteTopic(opts.url, name));

  await program.parseAsync(argv);
}
