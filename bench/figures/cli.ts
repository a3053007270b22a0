import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, type Figure, type Suite } from '../figure.js';
import { median, msSince, now } from '../stats.js';

const CLI = fileURLToPath(new URL('../../bin/enter.js', import.meta.url));

/** Runs a whole command and resolves with its wall time in ms; rejects on a non-zero exit. */
function timed(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    execFile(file, args, { env }, (err, _stdout, stderr) => {
      const ms = msSince(t0);
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(ms);
    });
  });
}

/**
 * `enter APP PROC INSTANCE -- true` against `docker exec CONTAINER true`, each a whole command
 * from spawn to exit, alternating: what a script calling either in a loop pays per call. The
 * CLI runs with a fresh HOME (no profile, nothing of the user's) and the broker and token from
 * ENTRY_BROKER and ENTRY_TOKEN.
 */
export const cliRoundtrip: Suite = {
  names: ['cli_roundtrip'],
  async run(ctx): Promise<Figure[]> {
    const reps = ctx.quick ? 10 : 30;
    const home = mkdtempSync(join(tmpdir(), 'entry-bench-cli-'));
    try {
      const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ENTRY_BROKER: ctx.broker.url, ENTRY_TOKEN: ctx.token };
      const enter = () => timed(process.execPath, [CLI, ctx.target.app, ctx.target.proc, ctx.target.instance, '--', 'true'], env);
      const docker = () => timed('docker', ['exec', ctx.target.id, 'true'], process.env);
      // Warm-up, untimed: the page cache and the V8 compile cache (when the CLI keeps one).
      await enter();
      await docker();
      const e: number[] = [];
      const d: number[] = [];
      for (let i = 0; i < reps; i++) {
        if (i % 2 === 0) {
          e.push(await enter());
          d.push(await docker());
        } else {
          d.push(await docker());
          e.push(await enter());
        }
      }
      // Node alone, for what no JavaScript of ours can remove.
      const bare: number[] = [];
      for (let i = 0; i < Math.min(reps, 10); i++) bare.push(await timed(process.execPath, ['-e', '0'], env));
      ctx.log(`cli_roundtrip: enter ${median(e).toFixed(0)} ms, docker exec ${median(d).toFixed(0)} ms, node -e 0 ${median(bare).toFixed(0)} ms`);
      return [figure('cli_roundtrip', 'ms', reps, median(e), median(d), { added: true, extra: { node_bare_ms: median(bare), entry_min_ms: Math.min(...e), direct_min_ms: Math.min(...d) } })];
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  },
};
