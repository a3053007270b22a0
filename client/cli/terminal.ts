import { execFileSync } from 'node:child_process';

/**
 * Puts the local terminal in raw mode and guarantees it comes back: the returned function is
 * idempotent and also registered for process exit, so every way out restores the settings.
 */
export function enterRawMode(stdin: NodeJS.ReadStream): () => void {
  let restored = false;
  stdin.setRawMode(true);
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

/** `stty -g` of the controlling terminal, for tests and diagnostics. */
export function sttySettings(): string {
  return execFileSync('stty', ['-g'], { stdio: ['inherit', 'pipe', 'ignore'] }).toString().trim();
}
