import { BrookDecoder, PgLogicalReplication, latencyRun } from '../bench/suites/cdc.js';
for (const rate of [1000, 10000]) {
  for (const sys of [new BrookDecoder(), new PgLogicalReplication(), new BrookDecoder()]) {
    const r = await latencyRun(sys, rate, 4);
    console.log(rate, sys.name, process.env.DEC_ACK ?? '', r.latency.p50Ms, r.latency.p99Ms, r.error ?? '');
  }
}
