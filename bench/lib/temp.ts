import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Temp directories the bench made; whatever is left is removed when the bench exits. */
const made = new Set<string>();
let hooked = false;

/** A fresh directory under `root`, removed at exit unless `removeTempDir` ran first. */
export function makeTempDir(root: string, prefix: string): string {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const dir of made) rmSync(dir, { recursive: true, force: true });
    });
  }
  const dir = mkdtempSync(join(root, `brook-bench-${process.pid}-${prefix}-`));
  made.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  made.delete(dir);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes directories left under `root` by earlier runs that died without their exit hooks. */
export function removeStaleTempDirs(root: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    const pid = /^brook-bench-(\d+)-/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || alive(Number(pid))) continue;
    rmSync(join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
