import type { BenchOptions } from '../lib/args.js';
import { dirBytes, syncDisks } from '../lib/os.js';
import { freePort, type ChildServer } from '../lib/processes.js';
import { int } from '../lib/report.js';
import { procStatusMb, RssSampler, type RssSummary } from '../lib/rss.js';
import { makeTempDir, removeTempDir } from '../lib/temp.js';
import { drainPartition, PayloadFactory, planBatches, runWindowed, type Workload } from '../lib/workload.js';
import { BrookHttpClient, produceBody, readPage } from '../brook/http-client.js';
import { startBrookServer } from '../brook/server.js';

export interface ScalePhase {
  readonly records: number;
  readonly seconds: number;
  readonly recPerSec: number;
  readonly mbPerSec: number;
  readonly rss: RssSummary;
}

export interface ScaleResult {
  readonly records: number;
  readonly recordBytes: number;
  readonly partitions: number;
  readonly startEmptyMs: number;
  readonly append: ScalePhase;
  readonly read: ScalePhase;
  /** Peak RSS over the server's whole life (VmHWM), read before the clean stop. */
  readonly vmHwmMb: number | null;
  readonly dataDirBytes: number;
  readonly cleanStop: { readonly stopMs: number; readonly exitCode: number | null; readonly forced: boolean };
  /** Spawn → `GET /healthz` 200 after the clean stop. */
  readonly startAfterCleanStopMs: number;
  readonly highWatermarkAfterCleanStop: number;
  /** Records acknowledged (up to this offset, exclusive) before the kill -9, which came mid-append. */
  readonly ackedBeforeKill: number;
  /** Spawn → `GET /healthz` 200 after kill -9. */
  readonly startAfterKillMs: number;
  readonly highWatermarkAfterKill: number;
}

const TOPIC = 'scale';
const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function highWatermark(client: BrookHttpClient): Promise<number> {
  return (await readPage(client, TOPIC, 0, 0, 1)).highWatermark;
}

/**
 * The scale benchmark on the Brook server as a child process: RSS while appending `scaleRecords`
 * records and while reading them all back from offset 0, then start-up time after a clean stop
 * (SIGTERM) and after kill -9 in the middle of appending, checking no acknowledged record is lost.
 */
export async function runScale(options: BenchOptions): Promise<ScaleResult> {
  const dataDir = makeTempDir(options.dir, 'scale');
  const port = await freePort();
  const client = new BrookHttpClient(port, options.window);
  const w: Workload = { topic: TOPIC, records: options.scaleRecords, recordBytes: 100, partitions: 1, batch: options.batch, window: options.window };
  const payloads = new PayloadFactory(w.recordBytes);
  let server: ChildServer | null = null;
  try {
    const first = await startBrookServer(options.serverBin, dataDir, port, client);
    server = first.server;
    await client.expect('POST', '/v1/topics', [201], JSON.stringify({ name: TOPIC, partitions: w.partitions }));
    progress(`scale: appending ${int(w.records)} × ${w.recordBytes} B over HTTP`);

    const plan = planBatches(w);
    let sampler = new RssSampler(server.pid).start();
    let started = performance.now();
    await runWindowed(
      plan.count,
      w.window,
      async (i) => {
        const b = plan.at(i);
        await client.expect('POST', `/v1/topics/${TOPIC}/records`, [200, 201], produceBody(0, payloads.batch(0, b.firstSeq, b.size).texts()));
      },
      { timeoutMs: options.phaseTimeoutMs },
    );
    const append = phase(w, performance.now() - started, await sampler.stop());
    progress(`  append ${int(append.recPerSec)} rec/s, RSS peak ${int(append.rss.peakMb)} MB`);

    progress('scale: reading everything back from offset 0');
    sampler = new RssSampler(server.pid).start();
    started = performance.now();
    let offset = 0;
    await drainPartition(
      {
        async next(max) {
          const page = await readPage(client, TOPIC, 0, offset, max);
          offset = page.nextOffset;
          return page;
        },
        async close() {},
      },
      w.records,
      w.recordBytes,
      w.batch,
      started + options.phaseTimeoutMs,
    );
    const read = phase(w, performance.now() - started, await sampler.stop());
    progress(`  read ${int(read.recPerSec)} rec/s, RSS peak ${int(read.rss.peakMb)} MB`);
    const vmHwmMb = await procStatusMb(server.pid, 'VmHWM');

    progress('scale: clean stop (SIGTERM) and restart');
    const stopped = await server.stop('SIGTERM', 60_000);
    server = null;
    const dataDirBytes = await dirBytes(dataDir);
    await syncDisks();
    const afterClean = await startBrookServer(options.serverBin, dataDir, port, client);
    server = afterClean.server;
    const highWatermarkAfterCleanStop = await highWatermark(client);
    if (highWatermarkAfterCleanStop !== w.records) {
      throw new Error(`after a clean restart the high watermark is ${highWatermarkAfterCleanStop}, expected ${w.records}`);
    }

    progress('scale: kill -9 while appending, and restart');
    const ackedBeforeKill = await appendThenKill(client, server, payloads, w, options.phaseTimeoutMs);
    server = null;
    const afterKill = await startBrookServer(options.serverBin, dataDir, port, client);
    server = afterKill.server;
    const highWatermarkAfterKill = await highWatermark(client);
    if (highWatermarkAfterKill < ackedBeforeKill) {
      throw new Error(`after kill -9 the high watermark is ${highWatermarkAfterKill}, but records up to ${ackedBeforeKill} were acknowledged`);
    }
    return {
      records: w.records,
      recordBytes: w.recordBytes,
      partitions: w.partitions,
      startEmptyMs: first.readyMs,
      append,
      read,
      vmHwmMb,
      dataDirBytes,
      cleanStop: { stopMs: stopped.ms, exitCode: stopped.code, forced: stopped.forced },
      startAfterCleanStopMs: afterClean.readyMs,
      highWatermarkAfterCleanStop,
      ackedBeforeKill,
      startAfterKillMs: afterKill.readyMs,
      highWatermarkAfterKill,
    };
  } finally {
    client.close();
    await server?.stop('SIGTERM', 60_000);
    await removeTempDir(dataDir);
  }
}

function phase(w: Workload, ms: number, rss: RssSummary): ScalePhase {
  const seconds = ms / 1000;
  return { records: w.records, seconds, recPerSec: w.records / seconds, mbPerSec: (w.records * w.recordBytes) / 1e6 / seconds, rss };
}

/**
 * Appends more batches and kills the server with SIGKILL once half of them are acknowledged or
 * after a second, whichever comes first, so the kill lands with appends in flight. Returns the
 * end of the highest acknowledged offset range.
 */
async function appendThenKill(
  client: BrookHttpClient,
  server: ChildServer,
  payloads: PayloadFactory,
  w: Workload,
  timeoutMs: number,
): Promise<number> {
  let ackedEnd = w.records;
  let acked = 0;
  const batches = Math.min(planBatches(w).count, 100_000);
  let pullTrigger = (): void => undefined;
  const trigger = new Promise<'trigger'>((resolve) => {
    pullTrigger = () => resolve('trigger');
  });
  const timer = setTimeout(pullTrigger, 1000);
  const appending = runWindowed(
    batches,
    w.window,
    async (i) => {
      const body = await client.expect('POST', `/v1/topics/${TOPIC}/records`, [200, 201], produceBody(0, payloads.batch(0, w.records + i * w.batch, w.batch).texts()));
      const { offsets } = JSON.parse(body) as { offsets: { offset: number }[] };
      const last = offsets.at(-1);
      if (last !== undefined) ackedEnd = Math.max(ackedEnd, last.offset + 1);
      if (++acked >= batches / 2) pullTrigger();
    },
    { timeoutMs },
  ).then(
    () => ({ failure: null }),
    (err: unknown) => ({ failure: err }),
  );
  const outcome = await Promise.race([appending, trigger]);
  clearTimeout(timer);
  // A failure before the kill is a real one; after it, requests in flight are expected to fail.
  if (outcome !== 'trigger' && outcome.failure !== null) throw outcome.failure;
  await server.stop('SIGKILL');
  await appending;
  return ackedEnd;
}
