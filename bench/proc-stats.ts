import { readdirSync, readFileSync } from 'node:fs';
import { cpuSeconds, rssBytes } from '../test/helpers/proc.js';

export { cpuSeconds, rssBytes };

/** Samples a process's RSS at an interval and keeps the peak. */
export class RssSampler {
  peak = 0;
  last = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pid: number) {}

  start(intervalMs = 50): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    return this;
  }

  sample(): number {
    try {
      this.last = rssBytes(this.pid);
      if (this.last > this.peak) this.peak = this.last;
    } catch {
      // The process is gone; keep what was seen.
    }
    return this.last;
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

export const MB = 1e6;
export const MiB = 1024 * 1024;

/** Pids whose /proc/<pid>/cmdline satisfies `match`. */
export function findPids(match: (cmdline: string, comm: string) => boolean): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const comm = readFileSync(`/proc/${name}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (match(cmdline, comm)) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

export type CpuParty = 'broker' | 'dockerd' | 'shim' | 'client';
export type CpuSnapshot = Record<CpuParty, number>;

/**
 * CPU seconds of everyone on a data path: the broker, dockerd, the container's
 * containerd-shim and this process (the client). On a small machine they share the cores,
 * so a path's cost is the sum.
 */
export class CpuMeter {
  private readonly dockerd: number[];
  private readonly shim: number[];

  constructor(
    private readonly brokerPid: number | undefined,
    containerIds: string | string[],
  ) {
    const ids = typeof containerIds === 'string' ? [containerIds] : containerIds;
    this.dockerd = findPids((_cmd, comm) => comm === 'dockerd');
    this.shim = findPids((cmd, comm) => comm.startsWith('containerd-shim') && ids.some((id) => cmd.includes(id)));
  }

  snapshot(): CpuSnapshot {
    const sum = (pids: number[]) => pids.reduce((s, pid) => s + safeCpu(pid), 0);
    const self = process.cpuUsage();
    return {
      broker: this.brokerPid ? safeCpu(this.brokerPid) : 0,
      dockerd: sum(this.dockerd),
      shim: sum(this.shim),
      client: (self.user + self.system) / 1e6,
    };
  }

  static delta(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
    return { broker: b.broker - a.broker, dockerd: b.dockerd - a.dockerd, shim: b.shim - a.shim, client: b.client - a.client };
  }
}

function safeCpu(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return 0;
  }
}
