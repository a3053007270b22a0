import { readFileSync } from 'node:fs';

/**
 * The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or undefined
 * when it is gone: with the PID, what tells a process from a later one given the same PID.
 */
export function processStartTicks(pid: number | 'self'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  // After it come state (field 3) onwards, so field 22 is the 20th.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}
