import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Which broker process wrote a ledger directory, so that another broker can tell whether it is
 * still alive: `<host name>.<boot id>.<pid>.<start time>`. A PID alone is not enough: it is
 * reused, and a broker in a container is PID 1 after every restart; with the kernel's boot id
 * and the process's start time (in clock ticks since boot) no other process has had the name.
 *
 * A broker judges only names of its own host name (a container's, or a pod's, is its own): a
 * state directory shared with other machines or other containers is never taken for dead
 * brokers' leftovers. Brokers that share one host name and a state directory must share a PID
 * namespace, since a broker judges the others by its own /proc.
 */
export interface Owner {
  readonly name: string;
}

const OWNER_NAME = /^(.+)\.([0-9a-f-]{36})\.(\d+)\.(\d+)$/;

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or undefined when it is gone. */
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

/** This process's owner name; throws when /proc cannot tell (not Linux, or /proc not mounted). */
export function currentOwner(): Owner {
  const start = processStartTicks('self');
  if (!start) throw new Error('/proc/self/stat cannot be read');
  return { name: `${hostname()}.${bootId()}.${process.pid}.${start}` };
}

/**
 * Whether the process an owner name stands for may still run. What cannot be judged from here
 * counts as alive (never someone's to clean up): a name that is not an owner name, another
 * host name, any name when the boot id cannot be read.
 */
export function ownerAlive(name: string): boolean {
  const m = OWNER_NAME.exec(name);
  if (!m || m[1] !== hostname()) return true;
  let boot: string;
  try {
    boot = bootId();
  } catch {
    return true;
  }
  // Written before this machine last booted: every process of that boot is gone.
  if (m[2] !== boot) return false;
  return processStartTicks(Number(m[3])) === m[4];
}

/** Whether `name` has the shape of an owner name. */
export function isOwnerName(name: string): boolean {
  return OWNER_NAME.test(name);
}
