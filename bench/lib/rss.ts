import { readFile } from 'node:fs/promises';

export interface RssSummary {
  readonly samples: number;
  readonly peakMb: number;
  readonly meanMb: number;
  readonly lastMb: number;
}

/** A field of /proc/<pid>/status in MB (the kernel reports kB), or null once the process is gone. */
export async function procStatusMb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null; // the process exited between samples; the sampler just stops counting
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return match?.[1] === undefined ? null : (Number(match[1]) * 1024) / 1e6;
}

/** Samples a process's VmRSS on an interval, keeping only running aggregates. */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private samples = 0;
  private sum = 0;
  private peak = 0;
  private last = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    this.timer = setInterval(() => {
      this.pending = this.sample();
    }, this.intervalMs);
    this.pending = this.sample();
    return this;
  }

  private async sample(): Promise<void> {
    const mb = await procStatusMb(this.pid, 'VmRSS');
    if (mb === null) return;
    this.samples++;
    this.sum += mb;
    this.last = mb;
    if (mb > this.peak) this.peak = mb;
  }

  async stop(): Promise<RssSummary> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.pending;
    await this.sample();
    return { samples: this.samples, peakMb: this.peak, meanMb: this.samples === 0 ? 0 : this.sum / this.samples, lastMb: this.last };
  }
}
