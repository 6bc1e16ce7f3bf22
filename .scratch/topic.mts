import { BrookCdcTopic, PgLogicalReplication, latencyRun, throughputRun } from '../bench/suites/cdc.js';
import { parseBenchArgs } from '../bench/lib/args.js';
const options = parseBenchArgs(['--quick', '--only=cdc', '--no-build']);
for (const rate of [1000, 10000]) {
  for (const sys of [new BrookCdcTopic(options), new PgLogicalReplication()]) {
    const r = await latencyRun(sys, rate, 4);
    console.log(rate, sys.name, r.latency.p50Ms, r.latency.p99Ms, r.latency.maxMs, r.received, r.error ?? '');
  }
}
