import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's version, from the nearest package.json above this file (sources, dist/ or the `enter` bundle). */
export const PACKAGE_VERSION = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'entry' && pkg.version) return pkg.version;
      } catch {
        // Not ours; keep looking.
      }
    }
    dir = dirname(dir);
  }
  return 'unknown';
})();
