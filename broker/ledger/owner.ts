import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { processStartTicks } from '../proc-stat.js';

/**
 * Which broker process wrote a ledger directory: `<host name>.<boot id>.<pid>.<start time>`, a
 * name no other process has had (a PID alone is reused, and a broker in a container is PID 1
 * after every restart). A broker judges only names of its own host name (a container's, or a
 * pod's, is its own): a state directory shared with other machines is never taken for dead
 * brokers' leftovers. Whether the owner still runs is asked of its socket (alive-socket.ts);
 * where there is no socket to ask, only an earlier boot says it is gone.
 */
export interface Owner {
  readonly name: string;
}

const OWNER_NAME = /^(.+)\.([0-9a-f-]{36})\.(\d+)\.(\d+)$/;

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

/** This process's owner name; throws when /proc cannot tell (not Linux, or /proc not mounted). */
export function currentOwner(): Owner {
  const start = processStartTicks('self');
  if (!start) throw new Error('/proc/self/stat cannot be read');
  return { name: `${hostname()}.${bootId()}.${process.pid}.${start}` };
}

/**
 * Whether another broker's owner name can be judged from here: its host name is this one's.
 * What cannot be judged counts as alive (never someone's to clean up).
 */
export function judgeable(name: string): boolean {
  const m = OWNER_NAME.exec(name);
  return m !== null && m[1] === hostname();
}

/** Whether an owner name of this host was written before this machine last booted (its process is gone for sure). */
export function fromEarlierBoot(name: string): boolean {
  const m = OWNER_NAME.exec(name);
  if (!m || m[1] !== hostname()) return false;
  try {
    return m[2] !== bootId();
  } catch {
    return false;
  }
}
