import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import type { JSONWebKeySet } from 'jose';
import { pino, type LevelWithSilent } from 'pino';
import { z } from 'zod';
import { assertDistinctSources, CdcSource, createCdcMetrics, parseCdcSourceConfig, type CdcMetricsSink, type CdcSourceConfig } from '../../cdc/index.js';
import { EmbeddedEngine } from '../../engine/embedded/index.js';
import type { Engine } from '../../engine/index.js';
import { JetStreamEngine } from '../../engine/jetstream/index.js';
import { channelsConfigSchema, type NamespaceInput } from '../../channels/index.js';
import { bindExposure, type AuthConfig } from '../../server/auth/index.js';
import { createServer } from '../../server/index.js';
import { keepHeapHeadroom } from '../../lib/heap-headroom.js';
import { Metrics } from '../../server/metrics.js';
import { quotaConfigFromFile, quotasFileSchema, type QuotaConfig } from '../../server/quota/index.js';
import { writeLine } from '../output.js';

export interface StartOptions {
  readonly port: number;
  readonly host: string;
  readonly data: string;
  readonly autoCreateTopics: boolean;
  readonly logLevel: LevelWithSilent;
  /** HS256 secret (`--auth-secret` or `BROOK_AUTH_SECRET`). */
  readonly authSecret?: string | undefined;
  /** RS256 keys: a JWKS file, or an http(s) URL serving one (`--auth-jwks`). */
  readonly authJwks?: string | undefined;
  /** Allow auth off on a non-loopback host. @defaultValue false */
  readonly insecureNoAuth?: boolean | undefined;
  /** A JSON config file (`--config`); flags take precedence over it. */
  readonly config?: string | undefined;
  /** @defaultValue 'embedded' */
  readonly engine?: 'embedded' | 'jetstream' | undefined;
  /** NATS servers for the JetStream engine, comma-separated. */
  readonly nats?: string | undefined;
  /** Prefix of the streams and buckets the JetStream engine creates. @defaultValue 'BROOK' */
  readonly natsPrefix?: string | undefined;
  /** NATS credentials file. */
  readonly natsCreds?: string | undefined;
  /** TLS to NATS: CA file, client certificate and key; any of them turns TLS on. */
  readonly natsTlsCa?: string | undefined;
  readonly natsTlsCert?: string | undefined;
  readonly natsTlsKey?: string | undefined;
  /** Queue backend: `native` maps queues onto JetStream (needs `engine: 'jetstream'`). @defaultValue 'engine' */
  readonly queueBackend?: 'engine' | 'native' | undefined;
  /** Serve every channel from any node on the JetStream backplane (docs/channels.md, "Several nodes"). */
  readonly channelsCluster?: boolean | undefined;
  /** With `channelsCluster`: how long a presence entry outlives its node (`--presence-ttl-ms`). @defaultValue 30_000 */
  readonly presenceTtlMs?: number | undefined;
  /**
   * JetStream engine: how long a node taking the group coordinator over waits before serving
   * joins (`--group-takeover-delay-ms`, docs/jetstream-engine.md "Failover"). @defaultValue 10_000
   */
  readonly groupTakeoverDelayMs?: number | undefined;
  /** A PostgreSQL CDC source from flags (`--cdc-url`, ...); more go in the config file's `cdc` list. */
  readonly cdc?: CdcFlags | undefined;
  /**
   * Old-generation room kept between full garbage collections, in MiB (`--heap-headroom-mb`,
   * docs/runtime.md); 0 leaves V8's defaults. @defaultValue DEFAULT_HEAP_HEADROOM_MB
   */
  readonly heapHeadroomMb?: number | undefined;
}

/** docs/runtime.md: at 10,000 CDC changes/s (about 2.5 MB/s promoted) a full collection every ~25 s instead of every second. */
export const DEFAULT_HEAP_HEADROOM_MB = 64;

export interface CdcFlags {
  readonly url: string;
  /** `schema.table`, comma-separated. */
  readonly tables?: string | undefined;
  /** Schemas captured whole, comma-separated. */
  readonly schemas?: string | undefined;
  readonly slot?: string | undefined;
  readonly publication?: string | undefined;
  readonly topicPrefix?: string | undefined;
}

/**
 * The `--config` file. Secrets do not go here (use `--auth-secret` or `BROOK_AUTH_SECRET`).
 *
 * ```json
 * { "auth": { "jwks": "keys.json", "issuer": "https://id.example.com", "audience": "brook" },
 *   "quotas": { "default_tier": "regular", "max_in_flight_bytes": 67108864,
 *     "tiers": { "regular": { "records_per_second": 1000, "bytes_per_second": 1048576 },
 *                "premium": { "records_per_second": 20000, "bytes_per_second": 33554432 } } },
 *   "channels": { "namespaces": [{ "name": "chat", "history": { "size": 100 }, "presence": true }] } }
 * ```
 */
const configFileSchema = z.strictObject({
  auth: z
    .strictObject({
      /** A JWKS file (relative to the config file) or URL. */
      jwks: z.string().min(1).optional(),
      issuer: z.string().min(1).optional(),
      audience: z.string().min(1).optional(),
    })
    .optional(),
  quotas: quotasFileSchema.optional(),
  /** PostgreSQL CDC sources (docs/cdc.md, "Configuration"); each is validated by parseCdcSourceConfig. */
  cdc: z.array(z.unknown()).optional(),
  /** Channel namespaces (docs/channels.md). */
  channels: channelsConfigSchema.optional(),
});

interface ServerSettings {
  readonly auth: AuthConfig;
  readonly cdc: readonly CdcSourceConfig[];
  readonly quotas?: QuotaConfig;
  readonly maxInFlightProduceBytes?: number;
  readonly namespaces?: readonly NamespaceInput[];
}

/**
 * Opens the engine, serves HTTP, and resolves after a clean shutdown on SIGTERM or SIGINT
 * (server first, so in-flight requests finish against an open engine, then the engine). A
 * second signal exits at once with status 1. Refuses to start (before opening anything) on a
 * non-loopback host without auth, unless `insecureNoAuth`.
 */
export async function start(options: StartOptions, out: Writable): Promise<void> {
  if (options.presenceTtlMs !== undefined && options.channelsCluster !== true) {
    throw new Error('--presence-ttl-ms needs --channels-cluster (presence on one node has no TTL)');
  }
  if (options.groupTakeoverDelayMs !== undefined && options.engine !== 'jetstream') {
    throw new Error('--group-takeover-delay-ms needs --engine jetstream (the embedded engine has no coordinator failover)');
  }
  const settings = await serverSettings(options);
  bindExposure(options.host, settings.auth.secret !== undefined || settings.auth.jwks !== undefined, options.insecureNoAuth ?? false);
  const headroomMb = options.heapHeadroomMb ?? DEFAULT_HEAP_HEADROOM_MB;
  const stopHeadroom = headroomMb > 0 ? keepHeapHeadroom(headroomMb * 1024 * 1024) : undefined;
  try {
    await serve(options, settings, out);
  } finally {
    stopHeadroom?.();
  }
}

/** What `start` does once the settings are checked: open, serve until a signal, close. */
async function serve(options: StartOptions, settings: ServerSettings, out: Writable): Promise<void> {
  // Synchronous: few lines (no per-request logging at info) and none lost on a crash.
  const logger = pino({ level: options.logLevel }, pino.destination({ dest: 2, sync: true }));
  // Made before the engine, which feeds `metrics.observeFsync`.
  const metrics = new Metrics({ logger });
  let cdcMetrics: CdcMetricsSink | undefined;
  const engine: Engine =
    options.engine === 'jetstream'
      ? new JetStreamEngine({
          servers: (options.nats ?? 'nats://127.0.0.1:4222').split(','),
          prefix: options.natsPrefix ?? 'BROOK',
          logger,
          ...(options.natsCreds === undefined ? {} : { credsFile: options.natsCreds }),
          ...(options.groupTakeoverDelayMs === undefined ? {} : { coordinatorTakeoverDelayMs: options.groupTakeoverDelayMs }),
          ...natsTls(options),
        })
      : new EmbeddedEngine({ dataDir: options.data, logger, onFsync: metrics.observeFsync });
  await engine.open();
  // Made before the server so `/v1/admin/cdc` lists them from the start; started after it.
  const sources = settings.cdc.map((config) => new CdcSource({ config, engine, logger, metrics: cdcMetrics ??= createCdcMetrics(metrics.registry) }));
  let server;
  try {
    server = await createServer({
      engine,
      host: options.host,
      port: options.port,
      logger,
      autoCreateTopics: options.autoCreateTopics,
      auth: settings.auth,
      insecureNoAuth: options.insecureNoAuth ?? false,
      metrics,
      cdc: sources,
      ...(options.queueBackend === undefined ? {} : { queueBackend: options.queueBackend }),
      ...(settings.quotas === undefined ? {} : { quotas: settings.quotas }),
      ...(settings.maxInFlightProduceBytes === undefined ? {} : { maxInFlightProduceBytes: settings.maxInFlightProduceBytes }),
      ...(settings.namespaces === undefined && options.channelsCluster !== true
        ? {}
        : {
            channels: {
              ...(settings.namespaces === undefined ? {} : { namespaces: settings.namespaces }),
              ...(options.channelsCluster === true ? { cluster: 'jetstream' as const } : {}),
              ...(options.presenceTtlMs === undefined ? {} : { presenceTtlMs: options.presenceTtlMs }),
            },
          }),
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const running = server;
  // CDC sources append to the engine; a source that cannot start stops `brook start` with its error.
  try {
    for (const source of sources) await source.start();
  } catch (err) {
    for (const source of sources) await source.stop();
    await running.close();
    await engine.close();
    throw err;
  }

  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      Promise.all(sources.map((source) => source.stop()))
        .then(() => running.close())
        .then(() => engine.close())
        .then(() => {
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          logger.info('stopped');
          resolve();
        }, reject);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    writeLine(out, `brook listening on ${running.url} (${options.engine === 'jetstream' ? `engine: jetstream at ${options.nats ?? 'nats://127.0.0.1:4222'}` : `data: ${options.data}`})`).catch(reject);
  });
}

function natsTls(options: StartOptions): { tls?: { caFile?: string; certFile?: string; keyFile?: string } } {
  const { natsTlsCa: caFile, natsTlsCert: certFile, natsTlsKey: keyFile } = options;
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return {};
  return {
    tls: {
      ...(caFile === undefined ? {} : { caFile }),
      ...(certFile === undefined ? {} : { certFile }),
      ...(keyFile === undefined ? {} : { keyFile }),
    },
  };
}

/** Flags over the config file: auth and quota settings for the server. */
async function serverSettings(options: StartOptions): Promise<ServerSettings> {
  const file = options.config === undefined ? {} : await readConfigFile(options.config);
  const base = options.config === undefined ? process.cwd() : dirname(resolve(options.config));
  const jwksSource = options.authJwks ?? (file.auth?.jwks === undefined ? undefined : pathOrUrl(file.auth.jwks, base));
  const auth: AuthConfig = {
    ...(options.authSecret === undefined || options.authSecret === '' ? {} : { secret: options.authSecret }),
    ...(jwksSource === undefined ? {} : { jwks: await loadJwks(jwksSource) }),
    ...(file.auth?.issuer === undefined ? {} : { issuer: file.auth.issuer }),
    ...(file.auth?.audience === undefined ? {} : { audience: file.auth.audience }),
  };
  const cdc = cdcSources(options.cdc, file.cdc ?? []);
  const channels = file.channels === undefined ? {} : { namespaces: file.channels.namespaces };
  if (file.quotas === undefined) return { auth, cdc, ...channels };
  const { quotas, maxInFlightBytes } = quotaConfigFromFile(file.quotas);
  return maxInFlightBytes === undefined
    ? { auth, cdc, quotas, ...channels }
    : { auth, cdc, quotas, maxInFlightProduceBytes: maxInFlightBytes, ...channels };
}

/** The config file's CDC sources plus the one from flags, validated before anything opens. */
function cdcSources(flags: CdcFlags | undefined, fromFile: readonly unknown[]): CdcSourceConfig[] {
  const list = (value: string | undefined): string[] | undefined =>
    value === undefined ? undefined : value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const sources = fromFile.map((entry) => parseCdcSourceConfig(entry));
  if (flags !== undefined) {
    sources.push(
      parseCdcSourceConfig(
        Object.fromEntries(
          Object.entries({
            url: flags.url,
            tables: list(flags.tables),
            schemas: list(flags.schemas),
            slot: flags.slot,
            publication: flags.publication,
            topicPrefix: flags.topicPrefix,
          }).filter(([, v]) => v !== undefined),
        ),
      ),
    );
  }
  assertDistinctSources(sources);
  return sources;
}

async function readConfigFile(path: string): Promise<z.infer<typeof configFileSchema>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`config file ${path} is invalid:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function pathOrUrl(value: string, base: string): string {
  return /^https?:\/\//i.test(value) ? value : resolve(base, value);
}

/** A JWKS URL is fetched lazily by the verifier; a file is read and checked now. */
async function loadJwks(source: string): Promise<JSONWebKeySet | URL> {
  if (/^https?:\/\//i.test(source)) return new URL(source);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(source, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read JWKS file ${source}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { keys?: unknown }).keys)) {
    throw new Error(`JWKS file ${source} must hold a JSON object with a "keys" array`);
  }
  return raw as JSONWebKeySet;
}
