import { BrookCdcTopic, latencyRun } from '../bench/suites/cdc.js';
import { parseBenchArgs } from '../bench/lib/args.js';
const options = parseBenchArgs(['--quick', '--only=cdc', '--no-build']);
for (const rate of [1000, 1000, 10000]) {
  const r = await latencyRun(new BrookCdcTopic(options), rate, Number(process.env.SECS ?? 12));
  console.log(rate, r.latency.p50Ms, r.latency.p99Ms, r.latency.maxMs, r.received, r.error ?? '');
}
