import { readFileSync } from 'node:fs';

/**
 * Which broker process wrote a ledger directory, so that another broker can tell whether it is
 * still alive. A PID alone is not enough: it is reused, and a broker in a container is PID 1
 * after every restart. The kernel's boot id and the process's start time (in clock ticks since
 * boot) make a name no other process on this machine has had: `<boot id>.<pid>.<start time>`.
 *
 * Brokers that share a state directory must share a PID namespace (one host, or one
 * container), since a broker judges the others by its own /proc.
 */
export interface Owner {
  readonly name: string;
}

const OWNER_NAME = /^([0-9a-f-]{36})\.(\d+)\.(\d+)$/;

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
  return { name: `${bootId()}.${process.pid}.${start}` };
}

/**
 * Whether the process an owner name stands for may still run: a name that is not one is
 * treated as alive (never someone's to clean up), as is any owner when the boot id cannot be read.
 */
export function ownerAlive(name: string): boolean {
  const m = OWNER_NAME.exec(name);
  if (!m) return true;
  let boot: string;
  try {
    boot = bootId();
  } catch {
    return true;
  }
  // Written before the machine last booted: every process of that boot is gone.
  if (m[1] !== boot) return false;
  return processStartTicks(Number(m[2])) === m[3];
}

/** Whether `name` has the shape of an owner name. */
export function isOwnerName(name: string): boolean {
  return OWNER_NAME.test(name);
}
