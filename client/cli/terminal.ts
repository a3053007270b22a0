import { execFileSync } from 'node:child_process';

/**
 * Puts the local terminal in raw mode and guarantees it comes back: the returned function is
 * idempotent and also registered for process exit, so every way out restores the settings.
 */
export function enterRawMode(stdin: NodeJS.ReadStream): () => void {
  let restored = false;
  stdin.setRawMode(true);
  // Node's raw mode keeps output processing (a newline written as CR LF): the remote terminal
  // has already done that, and would be done twice (`\r\r\n`); a remote program that turned
  // it off (`stty -onlcr`) would have its line feeds changed. Off here as with `docker exec -it`
  // and ssh; leaving raw mode restores the settings from before it, this one included.
  try {
    execFileSync('stty', ['-opost'], { stdio: ['inherit', 'ignore', 'ignore'] });
  } catch {
    // No stty (not a Unix terminal): the terminal's own processing stays.
  }
  const restore = () => {
    if (restored) return;
    restored = true;
    try {
      stdin.setRawMode(false);
    } catch {
      // The terminal is gone (hang-up): nothing left to restore.
    }
  };
  process.once('exit', restore);
  return restore;
}
