import { closeSync, openSync, readSync } from 'node:fs';

/**
 * The buffer /proc files are read into. `readFileSync` sees their size as 0 and so reads them in
 * 64 KiB buffers, two per file (the second finds the end), then joins them: a mass disconnect
 * reads tens of thousands of such files of a few hundred bytes, and those allocations were a
 * tenth of the broker's time in it, with the garbage collections they set off as much again.
 * 16 KiB holds any `children` file and most environments; a larger file grows it for that
 * read only.
 */
const SCRATCH_BYTES = 16 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

/**
 * The bytes of a /proc file, as a view over a buffer the next call reuses: parse it before
 * reading another. Throws as `readFileSync` does (ENOENT, ESRCH once the process is gone).
 */
export function readProcFile(path: string): Buffer {
  const fd = openSync(path, 'r');
  let buf = scratch;
  let len = 0;
  try {
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf.subarray(0, len);
}

/** The PIDs in a `children` file: decimal numbers separated by spaces. */
export function parsePidList(bytes: Buffer): number[] {
  const out: number[] = [];
  let n = -1;
  for (const b of bytes) {
    if (b >= 0x30 && b <= 0x39) n = (n < 0 ? 0 : n * 10) + (b - 0x30);
    else if (n >= 0) {
      out.push(n);
      n = -1;
    }
  }
  if (n >= 0) out.push(n);
  return out;
}

/** PF_KTHREAD in a process's flags (/proc/<pid>/stat, field 9): a kernel thread has no environment. */
const PF_KTHREAD = 0x00200000;

/**
 * Why a process's environment read as empty, from /proc/<pid>/stat:
 *  - `pending`: it is inside an execve, which has switched to its new memory but not yet laid
 *    out the new environment there (env_end, field 51, is still 0), or on its way out, its
 *    memory let go but not yet a zombie: read again shortly;
 *  - `empty`: it runs with an empty environment (`env -i`), or that environment was laid out
 *    since it was read: read again now;
 *  - `ended`: it has ended (a zombie, or gone): whatever children it had are its reaper's now;
 *  - `none`: it never will have one (a kernel thread).
 */
export function emptyEnvironmentCause(pid: number): 'pending' | 'empty' | 'ended' | 'none' {
  let stat: string;
  try {
    stat = readProcFile(`/proc/${pid}/stat`).toString('latin1');
  } catch {
    return 'ended';
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const flags = Number(fields[6]);
  const envEnd = fields[48];
  if (state === 'Z' || state === 'X') return 'ended';
  if ((flags & PF_KTHREAD) !== 0 || envEnd === undefined) return 'none';
  return envEnd === '0' ? 'pending' : 'empty';
}
