import { readFileSync } from 'node:fs';

/** The fields of /proc/PID/stat the broker reads. */
export interface ProcessStat {
  /** R, S, D, Z (zombie), X (dead)... */
  state: string;
  ppid: number;
  /** Start time in clock ticks since boot (field 22). */
  startTicks: string;
}

/** `pid`'s state, parent and start time, read at once; undefined when it is gone. */
export function readProcessStat(pid: number | 'self'): ProcessStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  // After it come state (field 3) onwards, so field 4 (the parent) is the 2nd and 22 the 20th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', ppid: Number(fields[1]), startTicks: fields[19] ?? '' };
}

/**
 * The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or undefined
 * when it is gone: with the PID, what tells a process from a later one given the same PID.
 */
export function processStartTicks(pid: number | 'self'): string | undefined {
  return readProcessStat(pid)?.startTicks;
}
