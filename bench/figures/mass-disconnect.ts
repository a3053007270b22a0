import { existsSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LoopProbe, startBroker } from '../broker.js';
import type { BenchTarget } from '../containers.js';
import { DirectExec } from '../direct-exec.js';
import { EntrySession } from '../entry-client.js';
import { type BenchContext, figure, type Figure, type Suite, utf8 } from '../figure.js';
import { msSince, now, quantile, sleep } from '../stats.js';
import { RAW_ECHO, type Typist, untilOutput, untilRelayedReady } from './echo.js';

/** Sessions per container, as in the concurrent figures: one shim is not the bottleneck. */
const SESSIONS_PER_CONTAINER = 250;
/** Sessions that keep typing through the drop (the issue's figure: 20). */
const TYPISTS = 20;
/** Direct exec shells typing alongside: what the engine and the machine alone give meanwhile. */
const DIRECT_TYPISTS = 5;
/**
 * The same through the WebSocket null relay: what one more hop, scheduled on the same cores,
 * gives meanwhile without any clean-up work of its own (the ceiling for any broker).
 */
const RELAY_TYPISTS = 5;
/** A keystroke per typist every 100 ms: 200 echoes a second in all, enough samples for a p99 over a few seconds. */
const KEY_INTERVAL_MS = 100;
/**
 * What each dropped session runs: a shell with a running child (`; true` keeps the shell from
 * exec'ing into sleep). `1001` tells these sleeps apart from anything else in the containers.
 */
const HOLDER = ['/bin/sh', '-c', 'echo READY; sleep 1001; true'];
const isHeld = (args: string) => args === 'sleep 1001' || args.includes('echo READY; sleep 1001');
/** How often the containers' process lists are read while waiting. */
const POLL_MS = 250;
/** Echo samples are taken for at least this long after the drop, even when clean-up is faster. */
const MIN_WINDOW_MS = 3_000;
const OPEN_PARALLEL = 8;

/**
 * The containers' cgroup.procs files, found from each container's init: the processes are
 * counted from /proc here rather than with `docker top`, which would load dockerd while it
 * is busy ending the execs.
 */
async function procsFiles(ctx: BenchContext, targets: BenchTarget[]): Promise<string[]> {
  const files: string[] = [];
  for (const t of targets) {
    const pid = (await ctx.docker.getContainer(t.id).inspect()).State.Pid;
    // cgroup v2 (`0::PATH`) or the v1 pids controller (`N:pids:PATH`), as the engine set it up.
    const found = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .flatMap((l) => {
        const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(l) ?? [];
        if (path === undefined) return [];
        if (controllers === '') return [`/sys/fs/cgroup${path}/cgroup.procs`, `/sys/fs/cgroup/unified${path}/cgroup.procs`];
        return controllers!.split(',').includes('pids') ? [`/sys/fs/cgroup/pids${path}/cgroup.procs`] : [];
      })
      .find((f) => existsSync(f) && readFileSync(f, 'utf8').trim() !== '');
    if (!found) throw new Error(`no cgroup.procs found for container ${t.id.slice(0, 12)}`);
    files.push(found);
  }
  return files;
}

/** Processes in the containers: one read per container, cheap enough to poll without delaying the typists' echo here. */
function allProcesses(files: string[]): number {
  return files.reduce((n, file) => n + readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 0);
}

/** The dropped sessions' processes, by command line. */
function heldProcesses(files: string[]): number {
  let n = 0;
  for (const file of files) {
    for (const pid of readFileSync(file, 'utf8').split('\n')) {
      if (pid === '') continue;
      try {
        if (isHeld(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim())) n++;
      } catch {
        // Exited meanwhile.
      }
    }
  }
  return n;
}

/** Types a key every KEY_INTERVAL_MS into each side, recording echo times; returns a stop function. */
function type(sides: Typist[], latencies: number[], late: { n: number }): () => void {
  const timers: NodeJS.Timeout[] = [];
  for (const s of sides) {
    let sentAt = 0n;
    s.onOutput = () => {
      if (sentAt !== 0n) latencies.push(msSince(sentAt));
      sentAt = 0n;
    };
    const tick = () => {
      if (sentAt !== 0n) {
        late.n++;
        return;
      }
      sentAt = now();
      s.send(utf8('x'));
    };
    timers.push(setTimeout(() => timers.push(setInterval(tick, KEY_INTERVAL_MS)), Math.random() * KEY_INTERVAL_MS));
  }
  return () => {
    for (const t of timers) clearInterval(t);
  };
}

/**
 * Many sessions, each with a running child, lose their clients at once (a load balancer
 * restart) while a few others keep typing: how long until the broker has ended every process
 * of the dropped sessions, what the typists' echo did meanwhile, and the broker's CPU for it.
 * No direct counterpart: a direct exec has nobody to end its processes.
 */
export const massDisconnect: Suite = {
  names: ['mass_disconnect'],
  async run(ctx): Promise<Figure[]> {
    const wanted = Number(process.env['BENCH_SESSIONS'] ?? (ctx.quick ? 200 : 1000));
    // A cap below the quick figure timeout (90 s) so that a slow broker still gives a figure.
    const capMs = ctx.quick ? 45_000 : 120_000;
    const targets: BenchTarget[] = [];
    for (let i = 1; i <= Math.ceil(wanted / SESSIONS_PER_CONTAINER); i++) targets.push(await ctx.containers.start('drop', i));
    const broker = await startBroker({ flags: ['--max-sessions', String(wanted + TYPISTS + 50)] });
    const held: EntrySession[] = [];
    const typists: EntrySession[] = [];
    const directs: DirectExec[] = [];
    const relayed: DirectExec[] = [];
    let stopTyping = () => undefined as void;
    try {
      const token = await broker.mint();
      let next = 0;
      const opener = async () => {
        while (next < wanted) {
          const i = next++;
          const s = await EntrySession.open(broker.wsUrl, token, targets[i % targets.length]!, { argv: HOLDER.map((a) => Buffer.from(a)) });
          await untilOutput(s, 0x52, 60_000);
          held.push(s);
        }
      };
      await Promise.all(Array.from({ length: OPEN_PARALLEL }, opener));
      for (let i = 0; i < TYPISTS; i++) {
        const s = await EntrySession.open(broker.wsUrl, token, targets[i % targets.length]!, { argv: RAW_ECHO.map((a) => Buffer.from(a)), tty: true, cols: 80, rows: 24 });
        await untilOutput(s, 0x52);
        typists.push(s);
      }
      for (let i = 0; i < DIRECT_TYPISTS; i++) {
        const d = await DirectExec.open(ctx.docker, targets[i % targets.length]!.id, { cmd: RAW_ECHO, tty: true });
        await untilOutput(d, 0x52);
        directs.push(d);
      }
      for (let i = 0; i < RELAY_TYPISTS; i++) {
        const r = await DirectExec.open(ctx.wsRelay.docker, targets[i % targets.length]!.id, { cmd: RAW_ECHO, tty: true });
        relayed.push(r);
        await untilRelayedReady(r);
      }
      const files = await procsFiles(ctx, targets);
      const before = heldProcesses(files);
      // Everything else in the containers (the typists' processes) stays: polled, the total
      // falling to this means the held ones are gone, which one last look by name confirms.
      const others = allProcesses(files) - before;
      ctx.log(`mass_disconnect: ${held.length} sessions holding ${before} processes, ${typists.length} typing (${directs.length} direct, ${relayed.length} through the WebSocket relay)`);

      const e: number[] = [];
      const d: number[] = [];
      const w: number[] = [];
      const late = { n: 0 };
      const stops = [type(typists, e, late), type(directs, d, { n: 0 }), type(relayed, w, { n: 0 })];
      stopTyping = () => stops.forEach((f) => f());
      await sleep(1_000);
      const [e0, d0, w0] = [e.length, d.length, w.length];

      const probe = new LoopProbe(broker.url, 20);
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const cpu0 = broker.cpuSeconds();
      const dropAt = now();
      for (const s of held) s.ws.terminate();
      let left = before;
      let goneMs = Number.NaN;
      while (msSince(dropAt) < capMs) {
        await sleep(POLL_MS);
        left = Math.max(0, allProcesses(files) - others);
        if (left === 0) left = heldProcesses(files);
        if (left === 0) {
          goneMs = msSince(dropAt);
          break;
        }
      }
      const cpu = broker.cpuSeconds() - cpu0;
      const wait = MIN_WINDOW_MS - msSince(dropAt);
      if (wait > 0) await sleep(wait);
      stopTyping();
      const healthz = await probe.stop();
      loop.disable();
      const during = e.slice(e0);
      const duringDirect = d.slice(d0);
      const duringRelay = w.slice(w0);
      const seconds = Number.isNaN(goneMs) ? msSince(dropAt) / 1000 : goneMs / 1000;
      ctx.log(
        `mass_disconnect: ${left === 0 ? 'all gone' : `${left} processes left`} after ${seconds.toFixed(1)} s, broker ${cpu.toFixed(2)} CPU s, ` +
          `echo p50/p99 entry ${quantile(during, 0.5).toFixed(2)}/${quantile(during, 0.99).toFixed(2)} ms, direct ${quantile(duringDirect, 0.5).toFixed(2)}/${quantile(duringDirect, 0.99).toFixed(2)} ms, ` +
          `ws relay ${quantile(duringRelay, 0.5).toFixed(2)}/${quantile(duringRelay, 0.99).toFixed(2)} ms, ` +
          `/healthz max ${Math.max(...healthz).toFixed(1)} ms`,
      );
      return [
        figure('mass_disconnect', 's', held.length, seconds, null, {
          extra: {
            sessions: held.length,
            processes: before,
            processes_left: left,
            containers: targets.length,
            typists: typists.length,
            echo_p50_ms: quantile(during, 0.5),
            echo_p99_ms: quantile(during, 0.99),
            echo_max_ms: during.length > 0 ? Math.max(...during) : Number.NaN,
            echo_samples: during.length,
            echo_unanswered_within_interval: late.n,
            direct_typists: directs.length,
            direct_echo_p50_ms: quantile(duringDirect, 0.5),
            direct_echo_p99_ms: quantile(duringDirect, 0.99),
            direct_echo_max_ms: duringDirect.length > 0 ? Math.max(...duringDirect) : Number.NaN,
            ws_relay_typists: relayed.length,
            ws_relay_echo_p50_ms: quantile(duringRelay, 0.5),
            ws_relay_echo_p99_ms: quantile(duringRelay, 0.99),
            ws_relay_echo_max_ms: duringRelay.length > 0 ? Math.max(...duringRelay) : Number.NaN,
            broker_healthz_p99_ms: quantile(healthz, 0.99),
            broker_healthz_max_ms: Math.max(...healthz),
            broker_cpu_s: cpu,
            client_event_loop_delay_max_ms: loop.max / 1e6,
          },
          note:
            left === 0
              ? `${held.length} sessions (sh + sleep each) dropped at once over ${targets.length} container(s); ${typists.length} others typing every ${KEY_INTERVAL_MS} ms, ${directs.length} direct exec shells and ${relayed.length} through the WebSocket relay alongside`
              : `${left} of ${before} processes still there after ${capMs / 1000} s`,
        }),
      ];
    } finally {
      stopTyping();
      for (const d of [...directs, ...relayed]) d.close();
      for (const s of typists) s.ws.terminate();
      for (const s of held) s.ws.terminate();
      await broker.stop();
    }
  },
};
