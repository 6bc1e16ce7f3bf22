/**
 * Brook's Prometheus metrics, on a Registry owned by the server (never prom-client's global
 * one, so two servers in one process do not mix). Served as text by `GET /metrics`.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `brook_records_in_total`, `brook_bytes_in_total` | counter | topic |
 * | `brook_records_out_total`, `brook_bytes_out_total` | counter | topic |
 * | `brook_produce_latency_seconds` | histogram | (append to durable acknowledgement) |
 * | `brook_http_requests_total` | counter | route (the pattern), code (the status) |
 * | `brook_errors_total` | counter | code (the error code) |
 * | `brook_throttled_total` | counter | reason (`records`, `bytes`, `in_flight`) |
 * | `brook_connections` | gauge | transport (`http`, `ws`, ...) |
 * | `brook_consumer_group_lag` | gauge, computed per scrape | group, topic, partition |
 * | `brook_fsync_duration_seconds` | histogram | (fed by the engine through `observeFsync`) |
 * | `brook_group_coordinator` | gauge, per scrape | (1 on the node serving consumer groups) |
 * | `brook_group_coordinator_takeovers_total` | counter, per scrape | (takeovers of the coordinator by this node) |
 * | `brook_queue_depth`, `brook_queue_in_flight`, `brook_queue_delayed`, `brook_queue_dead_letters` | gauge, per scrape | queue |
 * | `brook_queue_oldest_age_seconds` | gauge, per scrape | queue |
 * | `brook_queue_deliveries_total`, `brook_queue_redeliveries_total`, `brook_queue_acks_total` | counter | queue |
 * | `brook_queue_dead_lettered_total` | counter | queue, reason |
 * | `brook_queue_processing_seconds` | histogram | (delivery to ack) |
 *
 * Bytes are record bytes (key + value + headers, see engine/record-size.ts). Label cardinality is
 * bounded: past `maxTopicLabels` distinct topics, further ones share the topic label `~other`
 * (not a valid topic name); lag stops after `maxLagSeries` series.
 */
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Engine } from '../engine/index.js';
import type { DeadLetterReason, QueueObserver, QueueStats } from '../queues/index.js';
import { MAX_LAG_SERIES, MAX_TOPIC_LABELS } from './defaults.js';
import type { ThrottleReason } from './quota/index.js';

/** One labelled topic's counters (or the shared overflow series). */
interface TopicSeries {
  readonly recordsIn: Counter.Internal;
  readonly bytesIn: Counter.Internal;
  readonly recordsOut: Counter.Internal;
  readonly bytesOut: Counter.Internal;
}

export interface MetricsOptions {
  /** Where the metrics are registered. @defaultValue a new Registry */
  readonly registry?: Registry;
  /** Reports lag computations that fail. */
  readonly logger?: Logger;
  /** Node.js process metrics (CPU, memory, event loop, GC). @defaultValue true */
  readonly processMetrics?: boolean;
  /** @defaultValue 1000 */
  readonly maxTopicLabels?: number;
  /** @defaultValue 10_000 */
  readonly maxLagSeries?: number;
}

/** What the consumer-lag collector reads from an engine, once per scrape. */
export type LagSource = Pick<Engine, 'listTopics' | 'listGroups' | 'fetchOffsets'>;

/** What the queue gauges read, once per scrape. */
export interface QueueStatsSource {
  list(): Promise<QueueStats[]>;
}

/**
 * The topic label value for other topics once `maxTopicLabels` are in use. Not a valid topic or
 * queue name (`~` is outside both alphabets), so no real topic's series is folded into it.
 */
export const OTHER_TOPICS = '~other';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

interface LagPoint {
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

/**
 * @example
 * const metrics = new Metrics({ logger });
 * metrics.trackConsumerLag(engine);
 * // engine owner, later: new EmbeddedEngine({ ..., onFsync: metrics.observeFsync })
 * const text = await metrics.scrape();
 */
export class Metrics {
  readonly registry: Registry;
  private readonly logger: Logger | undefined;
  private readonly maxTopicLabels: number;
  private readonly maxLagSeries: number;
  /**
   * Each labelled topic's series, looked up once: `inc({ topic }, n)` hashes the label object on
   * every call, which a produce and a push each paid twice. Bounded by `maxTopicLabels` (plus
   * the shared series of the topics beyond it).
   */
  private readonly topicSeries = new Map<string, TopicSeries>();
  private readonly recordsIn: Counter<'topic'>;
  private readonly bytesIn: Counter<'topic'>;
  private readonly recordsOut: Counter<'topic'>;
  private readonly bytesOut: Counter<'topic'>;
  private readonly produceLatency: Histogram;
  private readonly httpRequests: Counter<'route' | 'code'>;
  private readonly errors: Counter<'code'>;
  private readonly throttles: Counter<'reason'>;
  private readonly connections: Gauge<'transport'>;
  private readonly fsync: Histogram;
  private lagSource: LagSource | null = null;
  private coordinatorSource: () => boolean = () => true;
  private takeoverSource: () => number = () => 0;
  private readBudgetSource: () => number = () => 0;
  private queueSource: QueueStatsSource | null = null;
  private readonly queueLabels = new Set<string>();
  private readonly queueDeliveries: Counter<'queue'>;
  private readonly queueRedeliveries: Counter<'queue'>;
  private readonly queueAcks: Counter<'queue'>;
  private readonly queueDeadLettered: Counter<'queue' | 'reason'>;
  private readonly queueProcessing: Histogram;
  /** One lag computation at a time; concurrent scrapes share it. */
  private lagRun: Promise<LagPoint[]> | null = null;
  private lagTruncatedLogged = false;

  constructor(options: MetricsOptions = {}) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    this.logger = options.logger;
    this.maxTopicLabels = options.maxTopicLabels ?? MAX_TOPIC_LABELS;
    this.maxLagSeries = options.maxLagSeries ?? MAX_LAG_SERIES;
    const registers = [registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
      new Counter({ name, help, labelNames, registers });

    this.recordsIn = counter('brook_records_in_total', 'Records appended, by topic.', ['topic']);
    this.bytesIn = counter('brook_bytes_in_total', 'Record bytes (key + value + headers) appended, by topic.', ['topic']);
    this.recordsOut = counter('brook_records_out_total', 'Records served to readers, by topic.', ['topic']);
    this.bytesOut = counter('brook_bytes_out_total', 'Record bytes served to readers, by topic.', ['topic']);
    this.produceLatency = new Histogram({
      name: 'brook_produce_latency_seconds',
      help: 'Time from a valid produce batch to its acknowledgement by the engine (durable with durability fsync).',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.httpRequests = counter('brook_http_requests_total', 'HTTP requests answered, by route pattern and status.', [
      'route',
      'code',
    ]);
    this.errors = counter('brook_errors_total', 'Error answers, by error code.', ['code']);
    this.throttles = counter('brook_throttled_total', 'Produce requests refused by flow control, by reason.', ['reason']);
    this.connections = new Gauge({
      name: 'brook_connections',
      help: 'Open client connections, by transport.',
      labelNames: ['transport'],
      registers,
    });
    const coordinator: Gauge = new Gauge({
      name: 'brook_group_coordinator',
      help: '1 while this node serves the consumer groups of its cluster (always 1 on the embedded engine; on JetStream, the node holding the coordinator lease).',
      registers,
      collect: () => coordinator.set(this.coordinatorSource() ? 1 : 0),
    });
    let takeoversSeen = 0;
    const takeovers: Counter = new Counter({
      name: 'brook_group_coordinator_takeovers_total',
      help: 'Times this node took the consumer-group coordinator over from an earlier one and began serving joins (JetStream engine; see docs/jetstream-engine.md, Failover).',
      registers,
      collect: () => {
        // The engine counts; the counter follows it (an engine count never decreases).
        const now = this.takeoverSource();
        if (now > takeoversSeen) takeovers.inc(now - takeoversSeen);
        takeoversSeen = Math.max(takeoversSeen, now);
      },
    });
    const readBudget: Gauge = new Gauge({
      name: 'brook_read_budget_in_use_bytes',
      help: 'Bytes of the server-wide read budget held by reads under way and by subscriptions reading ahead; fetches are refused (429 / RATE_LIMITED) while less than 64 KiB of it is left.',
      registers,
      collect: () => readBudget.set(this.readBudgetSource()),
    });
    this.fsync = new Histogram({
      name: 'brook_fsync_duration_seconds',
      help: 'Duration of the engine fsyncs that make appends durable.',
      buckets: FSYNC_BUCKETS,
      registers,
    });
    const lag: Gauge<'group' | 'topic' | 'partition'> = new Gauge({
      name: 'brook_consumer_group_lag',
      help: 'Records between a group committed offset and the partition high watermark (computed per scrape).',
      labelNames: ['group', 'topic', 'partition'],
      registers,
      collect: () => this.collectLag(lag),
    });
    this.queueDeliveries = counter('brook_queue_deliveries_total', 'Queue messages delivered (leased) to workers, by queue.', ['queue']);
    this.queueRedeliveries = counter('brook_queue_redeliveries_total', 'Deliveries after the first of a message, by queue.', ['queue']);
    this.queueAcks = counter('brook_queue_acks_total', 'Queue messages acknowledged, by queue.', ['queue']);
    this.queueDeadLettered = counter('brook_queue_dead_lettered_total', 'Queue messages moved to the dead letters, by queue and reason.', [
      'queue',
      'reason',
    ]);
    this.queueProcessing = new Histogram({
      name: 'brook_queue_processing_seconds',
      help: 'Time from a queue message delivery to its acknowledgement.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const queueGauge = (name: string, help: string, value: (q: QueueStats) => number): void => {
      const gauge: Gauge<'queue'> = new Gauge({
        name,
        help,
        labelNames: ['queue'],
        registers,
        collect: () => this.collectQueues(gauge, value),
      });
    };
    queueGauge('brook_queue_depth', 'Messages held by a queue (ready, delayed and in flight).', (q) => q.depth);
    queueGauge('brook_queue_in_flight', 'Queue messages leased to workers and not yet settled.', (q) => q.inFlight);
    queueGauge('brook_queue_delayed', 'Queue messages waiting for their delay, backoff or key.', (q) => q.delayed);
    queueGauge('brook_queue_dead_letters', 'Messages in a queue\'s dead letters.', (q) => q.deadLetters);
    queueGauge('brook_queue_oldest_age_seconds', 'Age of the oldest message a queue holds.', (q) => q.oldestAgeMs / 1000);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  }

  /** The content type of `scrape()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /** A produce acknowledged by the engine after `seconds`. */
  produced(topic: string, records: number, bytes: number, seconds: number): void {
    const series = this.seriesOf(topic);
    series.recordsIn.inc(records);
    series.bytesIn.inc(bytes);
    this.produceLatency.observe(seconds);
  }

  /** Records handed to a reader (fetch, push). */
  consumed(topic: string, records: number, bytes: number): void {
    if (records === 0) return;
    const series = this.seriesOf(topic);
    series.recordsOut.inc(records);
    series.bytesOut.inc(bytes);
  }

  /** An HTTP answer; `route` is the route pattern (bounded), never the raw path. */
  httpRequest(route: string, status: number): void {
    this.httpRequests.inc({ route, code: String(status) });
  }

  /** An error answer with a stable error code. */
  error(code: string): void {
    this.errors.inc({ code });
  }

  /** A produce refused by flow control. Bound, so it can be handed over as a callback. */
  readonly throttled = (reason: ThrottleReason): void => {
    this.throttles.inc({ reason });
  };

  connectionOpened(transport: string): void {
    this.connections.inc({ transport });
  }

  connectionClosed(transport: string): void {
    this.connections.dec({ transport });
  }

  /**
   * One engine fsync took `seconds`. Bound, so the engine can be given it as a plain callback;
   * the engine does not call it yet (wiring it is the engine owner's to do).
   */
  readonly observeFsync = (seconds: number): void => {
    this.fsync.observe(seconds);
  };

  /** Counts queue deliveries, acks and dead letters; give it to `QueueManager.open({ observer })`. */
  readonly queueObserver: QueueObserver = {
    delivered: (queue: string, count: number, redelivered: number): void => {
      const label = this.queueLabel(queue);
      this.queueDeliveries.inc({ queue: label }, count);
      if (redelivered > 0) this.queueRedeliveries.inc({ queue: label }, redelivered);
    },
    acked: (queue: string, processingMs: readonly number[]): void => {
      this.queueAcks.inc({ queue: this.queueLabel(queue) }, processingMs.length);
      for (const ms of processingMs) this.queueProcessing.observe(ms / 1000);
    },
    deadLettered: (queue: string, reason: DeadLetterReason, count: number): void => {
      this.queueDeadLettered.inc({ queue: this.queueLabel(queue), reason }, count);
    },
  };

  /** Computes the queue gauges from `source` on every scrape. */
  trackQueues(source: QueueStatsSource): void {
    this.queueSource = source;
  }

  private queueLabel(queue: string): string {
    if (this.queueLabels.has(queue)) return queue;
    if (this.queueLabels.size >= this.maxTopicLabels) return OTHER_TOPICS;
    this.queueLabels.add(queue);
    return queue;
  }

  private async collectQueues(gauge: Gauge<'queue'>, value: (q: QueueStats) => number): Promise<void> {
    gauge.reset();
    if (this.queueSource === null) return;
    try {
      const all = await this.queueSource.list();
      for (const q of all.slice(0, this.maxTopicLabels)) gauge.set({ queue: q.name }, value(q));
    } catch (err) {
      this.logger?.warn({ err }, 'could not compute queue metrics');
    }
  }

  /** Computes `brook_consumer_group_lag` from `source` on every scrape (replaces an earlier one). */
  trackConsumerLag(source: LagSource): void {
    this.lagSource = source;
  }

  /** Where `brook_group_coordinator` reads whether this node serves consumer groups now. */
  trackCoordinator(isCoordinator: () => boolean): void {
    this.coordinatorSource = isCoordinator;
  }

  /** Where `brook_group_coordinator_takeovers_total` reads this node's takeover count. */
  trackCoordinatorTakeovers(count: () => number): void {
    this.takeoverSource = count;
  }

  /** Where `brook_read_budget_in_use_bytes` reads the budget's use. */
  trackReadBudget(inUse: () => number): void {
    this.readBudgetSource = inUse;
  }

  /** Drops a deleted topic's series and frees its label slot. */
  forgetTopic(topic: string): void {
    if (topic === OTHER_TOPICS || !this.topicSeries.delete(topic)) return;
    for (const c of [this.recordsIn, this.bytesIn, this.recordsOut, this.bytesOut]) c.remove({ topic });
  }

  /** The topic's own series, or the shared OTHER_TOPICS series once `maxTopicLabels` topics have theirs. */
  private seriesOf(topic: string): TopicSeries {
    const series = this.topicSeries.get(topic);
    if (series !== undefined) return series;
    const owned = this.topicSeries.size - (this.topicSeries.has(OTHER_TOPICS) ? 1 : 0);
    const own = owned < this.maxTopicLabels;
    const label = own ? topic : OTHER_TOPICS;
    const shared = own ? undefined : this.topicSeries.get(OTHER_TOPICS);
    if (shared !== undefined) return shared;
    const created: TopicSeries = {
      recordsIn: this.recordsIn.labels(label),
      bytesIn: this.bytesIn.labels(label),
      recordsOut: this.recordsOut.labels(label),
      bytesOut: this.bytesOut.labels(label),
    };
    this.topicSeries.set(label, created);
    return created;
  }

  private async collectLag(gauge: Gauge<'group' | 'topic' | 'partition'>): Promise<void> {
    const source = this.lagSource;
    if (source === null) return;
    this.lagRun ??= this.computeLag(source).finally(() => {
      this.lagRun = null;
    });
    let points: LagPoint[];
    try {
      points = await this.lagRun;
    } catch (err) {
      // A scrape during shutdown (engine closed) or a failing engine: the rest of the metrics
      // are still worth serving, so lag is left out of this scrape and the failure logged.
      this.logger?.warn({ err }, 'could not compute consumer group lag');
      gauge.reset();
      return;
    }
    gauge.reset();
    for (const p of points) gauge.set({ group: p.group, topic: p.topic, partition: String(p.partition) }, p.lag);
  }

  private async computeLag(source: LagSource): Promise<LagPoint[]> {
    const highWatermarks = new Map<string, number>();
    for (const topic of await source.listTopics()) {
      for (const p of topic.partitions) highWatermarks.set(`${p.partition}/${topic.name}`, p.highWatermark);
    }
    const points: LagPoint[] = [];
    for (const group of await source.listGroups()) {
      for (const o of await source.fetchOffsets(group)) {
        const high = highWatermarks.get(`${o.partition}/${o.topic}`);
        if (high === undefined) continue; // topic deleted since the commit
        if (points.length >= this.maxLagSeries) {
          if (!this.lagTruncatedLogged) {
            this.lagTruncatedLogged = true;
            this.logger?.warn({ limit: this.maxLagSeries }, 'consumer group lag truncated to its series limit');
          }
          return points;
        }
        points.push({ group, topic: o.topic, partition: o.partition, lag: Math.max(0, high - o.offset) });
      }
    }
    return points;
  }
}
