import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Flushes every dirty page on the machine, so writeback left by the previous system (JetStream
 * does not fsync per ack) is not paid for by the next one.
 */
export async function syncDisks(): Promise<void> {
  await run('sync');
}

/** Total size of the files under `dir`. */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}
