import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

function onPath(command: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // Not here.
    }
  }
  return false;
}

/**
 * The command that opens a URL in the user's browser: $BROWSER, else `open` on macOS, else
 * `xdg-open` when there is a display to open it on. Undefined: print the URL instead.
 */
export function browserCommand(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string | undefined {
  if (env['BROWSER']) return env['BROWSER'];
  if (platform === 'darwin') return 'open';
  if ((env['DISPLAY'] || env['WAYLAND_DISPLAY']) && onPath('xdg-open', env)) return 'xdg-open';
  return undefined;
}

/** Starts the browser on `url`, detached; false when there is none or it cannot start. */
export function openBrowser(url: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const command = browserCommand(env);
  if (!command) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      const child = spawn(command, [url], { stdio: 'ignore', detached: true, env });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
