import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout's root: the nearest folder above this file with a package.json. This file runs
 * from test/helpers/ (vitest) and from dist/test/helpers/ (the bench, compiled), so a fixed
 * relative path would not do.
 */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
})();

/** The built broker (npm run build). */
export const BUILT_BROKER = join(ROOT, 'dist/broker/main.js');
/** The embeddable terminal's built bundle (npm run build:web). */
export const CONSOLE_BUNDLE = join(ROOT, 'dist/console/entry-terminal.js');
