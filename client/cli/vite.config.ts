import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The `enter` command as one file (dist/bin/enter.js) with its dependencies inside: Node's ESM
// loader resolving ~230 modules one by one, and scanning each CommonJS package for its exports,
// cost a script's every `enter … -- CMD` about 80 ms before a byte was sent. Commands that are
// imported lazily stay lazy, as chunks beside it.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  publicDir: false,
  build: {
    ssr: here('./main.ts'),
    outDir: here('../../dist/bin'),
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    sourcemap: true,
    rolldownOptions: {
      // ws loads these native helpers when they are installed, and runs without them otherwise.
      external: ['bufferutil', 'utf-8-validate'],
      output: { format: 'esm', entryFileNames: 'enter.js', chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
  ssr: { noExternal: true, target: 'node' },
});
