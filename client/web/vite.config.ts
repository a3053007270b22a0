import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Two builds into dist/console: the console page (default mode) and, with `--mode lib`, the
// embeddable module as one ESM file with xterm and its CSS inside.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const outDir = here('../../dist/console');

export default defineConfig(({ mode }) =>
  mode === 'lib'
    ? {
        publicDir: false,
        build: {
          outDir,
          emptyOutDir: false,
          target: 'es2022',
          minify: 'oxc',
          // Library builds keep whitespace by default; this file goes to browsers as it is.
          rolldownOptions: { output: { minify: true } },
          sourcemap: true,
          lib: { entry: here('./entry-terminal.ts'), formats: ['es'], fileName: () => 'entry-terminal.js' },
        },
      }
    : {
        root: here('./console'),
        base: './',
        publicDir: false,
        build: {
          outDir,
          emptyOutDir: true,
          target: 'es2022',
          sourcemap: true,
          assetsDir: 'assets',
        },
      },
);
