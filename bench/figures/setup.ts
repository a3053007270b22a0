import { DirectExec } from '../direct-exec.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import { type BenchContext, figure, type Figure, INTERACTIVE_SHELL, type Suite, utf8 } from '../figure.js';
import { median, msSince, now } from '../stats.js';

const EXIT_SHELL = utf8('exit\r');

/** Resolves at the first output byte. */
function firstOutput(side: { onOutput: OutputHandler }): Promise<void> {
  return new Promise((resolve) => {
    side.onOutput = () => {
      side.onOutput = () => undefined;
      resolve();
    };
  });
}

/** Time to the WebSocket being open (upgrade, token check, container lookup) per Entry run. */
let upgradeMs: number[] = [];

/** Connect → first prompt byte of the interactive shell (TTY), then `exit`. */
async function entryInteractive(ctx: BenchContext): Promise<number> {
  const t0 = now();
  const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { tty: true, cols: 80, rows: 24 });
  upgradeMs.push(msSince(t0));
  await firstOutput(s);
  const ms = msSince(t0);
  s.send(EXIT_SHELL);
  await s.closed;
  return ms;
}

async function directInteractive(ctx: BenchContext, sized = false): Promise<number> {
  const t0 = now();
  const d = await DirectExec.open(ctx.docker, ctx.target.id, { cmd: INTERACTIVE_SHELL, tty: true });
  // What `docker exec -it` does on an engine without ConsoleSize (API < 1.42), as the broker
  // does: the terminal's size, asked for right after the start, not waited for.
  const resized = sized ? d.exec.resize({ h: 24, w: 80 }).catch(() => undefined) : undefined;
  await firstOutput(d);
  const ms = msSince(t0);
  await resized;
  d.send(EXIT_SHELL);
  await d.exitCode();
  d.close();
  return ms;
}

/** The direct exec with the size set as a terminal client sets it (see directInteractive). */
const directSized = (ctx: BenchContext): Promise<number> => directInteractive(ctx, true);

/** Connect → exit code of `true`. */
async function entryScripted(ctx: BenchContext): Promise<number> {
  const t0 = now();
  const s = await EntrySession.open(ctx.broker.wsUrl, ctx.token, ctx.target, { argv: [utf8('true')], tty: false });
  upgradeMs.push(msSince(t0));
  const code = await s.exit;
  const ms = msSince(t0);
  if (code !== 0) throw new Error(`true exited with ${code} through Entry`);
  await s.closed;
  return ms;
}

async function directScripted(ctx: BenchContext): Promise<number> {
  const t0 = now();
  // What `docker exec c true` does: no stdin attached.
  const d = await DirectExec.open(ctx.docker, ctx.target.id, { cmd: ['true'], tty: false, stdin: false });
  const code = await d.exitCode();
  const ms = msSince(t0);
  if (code !== 0) throw new Error(`true exited with ${code} directly`);
  d.close();
  return ms;
}

/**
 * Engine calls the broker makes around a session that a direct client does not: the label
 * lookup (two filtered container lists, Entry's labels and Compose's, in parallel) and a
 * container inspect. Their latency is most of what Entry adds to setup.
 */
async function engineCallLatency(ctx: BenchContext): Promise<{ listMs: number; inspectMs: number }> {
  const list: number[] = [];
  const inspect: number[] = [];
  const t = ctx.target;
  for (let i = 0; i < 10; i++) {
    let t0 = now();
    await Promise.all([
      ctx.docker.listContainers({ all: true, filters: { label: [`entry.app=${t.app}`, `entry.proc=${t.proc}`, `entry.instance=${t.instance}`] } }),
      ctx.docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${t.app}`, `com.docker.compose.service=${t.proc}`, `com.docker.compose.container-number=${t.instance}`] } }),
    ]);
    list.push(msSince(t0));
    t0 = now();
    await ctx.docker.getContainer(t.id).inspect();
    inspect.push(msSince(t0));
  }
  return { listMs: median(list), inspectMs: median(inspect) };
}

type Side = (c: BenchContext) => Promise<number>;

/** Runs every side `reps` times, rotating which goes first, after one untimed warm-up each. */
async function alternate(ctx: BenchContext, reps: number, sides: Side[]): Promise<number[][]> {
  for (const side of sides) await side(ctx);
  upgradeMs = [];
  const times: number[][] = sides.map(() => []);
  for (let i = 0; i < reps; i++) {
    for (let k = 0; k < sides.length; k++) {
      const at = (i + k) % sides.length;
      times[at]!.push(await sides[at]!(ctx));
    }
  }
  return times;
}

export const setupInteractive: Suite = {
  names: ['setup_interactive'],
  async run(ctx): Promise<Figure[]> {
    const reps = ctx.quick ? 6 : 30;
    const [e = [], d = [], sized = []] = await alternate(ctx, reps, [entryInteractive, directInteractive, directSized]);
    const engine = await engineCallLatency(ctx);
    ctx.log(`setup_interactive: entry ${median(e).toFixed(1)} ms, direct ${median(d).toFixed(1)} ms, direct with the size set ${median(sized).toFixed(1)} ms; engine: label lookup ${engine.listMs.toFixed(1)} ms`);
    return [
      figure('setup_interactive', 'ms', reps, median(e), median(d), {
        added: true,
        extra: { entry_min: Math.min(...e), direct_min: Math.min(...d), direct_sized_ms: median(sized), entry_upgrade_ms: median(upgradeMs), engine_label_lookup_ms: engine.listMs },
      }),
    ];
  },
};

export const setupScripted: Suite = {
  names: ['setup_scripted'],
  async run(ctx): Promise<Figure[]> {
    const reps = ctx.quick ? 6 : 30;
    const [e = [], d = []] = await alternate(ctx, reps, [entryScripted, directScripted]);
    const engine = await engineCallLatency(ctx);
    ctx.log(`setup_scripted: entry ${median(e).toFixed(1)} ms, direct ${median(d).toFixed(1)} ms; engine: label lookup ${engine.listMs.toFixed(1)} ms, container inspect ${engine.inspectMs.toFixed(1)} ms`);
    return [
      figure('setup_scripted', 'ms', reps, median(e), median(d), {
        added: true,
        extra: {
          entry_min: Math.min(...e),
          direct_min: Math.min(...d),
          entry_upgrade_ms: median(upgradeMs),
          engine_label_lookup_ms: engine.listMs,
          engine_container_inspect_ms: engine.inspectMs,
        },
      }),
    ];
  },
};
