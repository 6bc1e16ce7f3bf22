import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../errors.js';

/**
 * One engine per data directory. The lock file holds the owner's pid; a lock left by a process
 * that no longer exists (after `kill -9`) is taken over.
 */
export class DataDirLock {
  private readonly path: string;
  private held = false;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'LOCK');
  }

  async acquire(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.path, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        this.held = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number(await readFile(this.path, 'utf8').catch(() => ''));
        if (Number.isInteger(owner) && owner > 0 && (owner === process.pid || isAlive(owner))) {
          throw new StorageError(`data directory is in use by process ${owner} (${this.path})`);
        }
        await rm(this.path, { force: true });
      }
    }
    throw new StorageError(`could not lock the data directory (${this.path})`);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await rm(this.path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
