/**
 * One system of the latency suite measured in a process of its own (suites/latency.ts): gets
 * `{ name, options }` over IPC, measures, sends the LatencyRun back and exits. Ends at once if
 * the bench that started it goes away (its servers are stopped by their own exit hooks).
 */
import type { BenchOptions } from '../lib/args.js';
import type { LatencySystem } from '../lib/latency-system.js';
import { measureLatency } from './latency.js';

process.once('disconnect', () => process.exit(1));
process.once('message', (message) => {
  const { name, options } = message as { name: LatencySystem['name']; options: BenchOptions };
  measureLatency(name, options).then(
    (run) => process.send!(run, () => process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`latency ${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
});
