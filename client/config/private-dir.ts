import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Makes `dir` and its missing parents, mode 0700, one level at a time. Node 20's recursive
 * mkdirSync retries for ever where a parent exists but takes no new entries (/proc answers
 * ENOENT), which spun `enter` at full CPU with ENTRY_CONFIG_DIR there. Throws an error that
 * names `what` and `dir`, and why it cannot be made.
 */
export function makePrivateDir(dir: string, what: string): void {
  const missing: string[] = [];
  // Up to the nearest ancestor that exists ('/' always does, and is its own dirname).
  for (let at = resolve(dir); ; at = dirname(at)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(at).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a file further up, named once the walk reaches it.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw cannotMake(what, dir, (err as Error).message);
      missing.unshift(at);
      continue;
    }
    if (!isDirectory) throw cannotMake(what, dir, `${at} is not a directory`);
    break;
  }
  for (const each of missing) {
    try {
      mkdirSync(each, { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Made meanwhile by another `enter`.
      if (code === 'EEXIST' && statSync(each).isDirectory()) continue;
      throw cannotMake(what, dir, whyNot(dirname(each), err as NodeJS.ErrnoException));
    }
  }
}

function whyNot(parent: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    // The parent exists (the walk saw it): it is a file system of its own kind, such as /proc.
    case 'ENOENT':
      return `${parent} takes no new directories (ENOENT)`;
    case 'EACCES':
    case 'EPERM':
      return `creating a directory in ${parent} is not permitted (${err.code})`;
    case 'EROFS':
      return `${parent} is on a read-only file system (EROFS)`;
    default:
      return err.message;
  }
}

function cannotMake(what: string, dir: string, why: string): Error {
  return new Error(`cannot create ${what} ${dir}: ${why}`);
}
