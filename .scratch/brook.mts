import { BrookCdc, latencyRun, throughputRun } from '../bench/suites/cdc.js';
import { parseBenchArgs } from '../bench/lib/args.js';
const options = parseBenchArgs(['--quick', '--only=cdc', '--no-build']);
for (const rate of [1000, 10000]) {
  const r = await latencyRun(new BrookCdc(options), rate, 4);
  console.log(rate, r.latency.p50Ms, r.latency.p99Ms, r.latency.maxMs, r.received, r.error ?? '');
}
const t = await throughputRun(new BrookCdc(options), 200_000);
console.log('throughput', t.changesPerSec, t.seconds, t.error ?? '');
