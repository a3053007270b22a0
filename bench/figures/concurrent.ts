import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LoopProbe, startBroker } from '../broker.js';
import type { BenchTarget } from '../containers.js';
import { DirectExec } from '../direct-exec.js';
import { EntrySession } from '../entry-client.js';
import { type BenchContext, figure, type Figure, INTERACTIVE_SHELL, type Suite, utf8 } from '../figure.js';
import { CpuMeter, MB, RssSampler } from '../proc-stats.js';
import { msSince, now, quantile, sleep } from '../stats.js';
import type { Typist } from './echo.js';

/** Sessions per container: execs are spread so that one container's shim is not the bottleneck. */
const SESSIONS_PER_CONTAINER = 250;
const KEY = utf8('x');
/** Ctrl-U (clear the line), then `exit`: the shells end themselves, no clean-up needed. */
const LEAVE = utf8('\x15exit\r');
const PROMPT_TIMEOUT_MS = 60_000;
/** Sessions dropped without a goodbye after the typing window, and how long the others keep typing. */
const DISCONNECTS = 5;
const DISCONNECT_WINDOW_MS = 8_000;

interface Typing {
  side: Typist;
  sentAt: bigint;
  latencies: number[];
  late: number;
}

/** Resolves at the first output byte (the prompt), rejects after a minute or if `closed` first. */
function prompt(side: Typist, closed: Promise<unknown>, why: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no prompt within ${PROMPT_TIMEOUT_MS / 1000} s (${why()})`)), PROMPT_TIMEOUT_MS);
    side.onOutput = () => {
      clearTimeout(timer);
      side.onOutput = () => undefined;
      resolve();
    };
    void closed.then(() => reject(new Error(`closed before the prompt: ${why()}`)));
  });
}

async function openEntryShell(wsUrl: string, token: string, target: BenchTarget): Promise<EntrySession> {
  const s = await EntrySession.open(wsUrl, token, target, { tty: true, cols: 80, rows: 24 });
  await prompt(s, s.closed, () => `${s.closeCode} ${s.closeLine.trim()}`);
  return s;
}

async function openDirectShell(ctx: BenchContext, target: BenchTarget): Promise<DirectExec> {
  const d = await DirectExec.open(ctx.docker, target.id, { cmd: INTERACTIVE_SHELL, tty: true });
  await prompt(d, d.ended, () => 'stream ended');
  return d;
}

/** One keystroke a second per session, phases spread over the second; echo times recorded. */
function startTyping(all: Typing[]): () => void {
  const timers: NodeJS.Timeout[] = [];
  for (const t of all) {
    t.side.onOutput = () => {
      if (t.sentAt !== 0n) {
        t.latencies.push(msSince(t.sentAt));
        t.sentAt = 0n;
      }
    };
    const tick = () => {
      if (t.sentAt !== 0n) {
        t.late++;
        return;
      }
      t.sentAt = now();
      t.side.send(KEY);
    };
    timers.push(
      setTimeout(() => {
        tick();
        timers.push(setInterval(tick, 1_000));
      }, Math.random() * 1_000),
    );
  }
  return () => {
    for (const t of timers) clearInterval(t);
  };
}

const unanswered = (all: Typing[]) => all.reduce((n, t) => n + t.late + (t.sentAt !== 0n ? 1 : 0), 0);

/**
 * N interactive shells held open on one broker, each typing one keystroke a second: the
 * broker's RSS and CPU, and the echo latency under that load. Runs on a fresh broker. A few
 * direct exec shells type alongside, under the same load: their echo p99 is the direct
 * figure, i.e. what the engine and the machine alone give at that load.
 */
export const concurrent: Suite = {
  names: ['concurrent_rss', 'concurrent_echo_p99'],
  async run(ctx): Promise<Figure[]> {
    const wanted = Number(process.env['BENCH_SESSIONS'] ?? (ctx.quick ? 200 : 1000));
    const probes = Math.max(5, Math.round(wanted / 50));
    const typingMs = ctx.quick ? 8_000 : 20_000;
    const parallel = 8;
    const targets: BenchTarget[] = [];
    for (let i = 1; i <= Math.ceil(wanted / SESSIONS_PER_CONTAINER); i++) targets.push(await ctx.containers.start('load', i));
    const broker = await startBroker({ flags: ['--max-sessions', String(wanted + 100)] });
    const entries: EntrySession[] = [];
    const directs: DirectExec[] = [];
    try {
      const token = await broker.mint();
      // Warm-up, then the idle baseline.
      const w = await openEntryShell(broker.wsUrl, token, targets[0]!);
      w.send(LEAVE);
      await w.closed;
      await sleep(500);
      const rssIdle = broker.rss();
      const cpuOpen0 = broker.cpuSeconds();
      const openStart = now();
      let failure: string | undefined;
      let next = 0;
      const opener = async () => {
        while (!failure && next < wanted) {
          const i = next++;
          try {
            entries.push(await openEntryShell(broker.wsUrl, token, targets[i % targets.length]!));
          } catch (err) {
            failure ??= `session ${i + 1} failed: ${(err as Error).message}`;
          }
          if (entries.length % 100 === 0 && entries.length > 0) ctx.log(`concurrent: ${entries.length} sessions open`);
        }
      };
      await Promise.all(Array.from({ length: parallel }, opener));
      const openSeconds = msSince(openStart) / 1000;
      const openCpu = broker.cpuSeconds() - cpuOpen0;
      if (entries.length === 0) throw new Error(failure ?? 'no session opened');
      if (failure) ctx.log(`concurrent: stopped at ${entries.length} sessions: ${failure}`);
      for (let i = 0; i < probes; i++) directs.push(await openDirectShell(ctx, targets[i % targets.length]!));
      await sleep(1_000);
      const rssHeld = broker.rss();

      const typingEntry: Typing[] = entries.map((side) => ({ side, sentAt: 0n, latencies: [], late: 0 }));
      const typingDirect: Typing[] = directs.map((side) => ({ side, sentAt: 0n, latencies: [], late: 0 }));
      const sampler = new RssSampler(broker.pid).start(200);
      const meter = new CpuMeter(broker.pid, targets.map((t) => t.id));
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const probe = new LoopProbe(broker.url);
      const cpu0 = meter.snapshot();
      const typeStart = now();
      const stop = startTyping([...typingEntry, ...typingDirect]);
      await sleep(typingMs);
      const typeSeconds = msSince(typeStart) / 1000;
      const cpu = CpuMeter.delta(cpu0, meter.snapshot());
      loop.disable();
      const rssPeak = sampler.stop();
      const probeTyping = probe.samples.length;
      const e = typingEntry.flatMap((t) => t.latencies);
      const d = typingDirect.flatMap((t) => t.latencies);

      // Abrupt disconnects while the others keep typing: the broker must end those sessions'
      // processes itself; how much that costs everyone else shows in their echo.
      const dropped = typingEntry.splice(0, DISCONNECTS);
      const marks = new Map(typingEntry.map((t) => [t, t.latencies.length]));
      const cpuDrop0 = broker.cpuSeconds();
      for (const t of dropped) (t.side as EntrySession).ws.terminate();
      await sleep(DISCONNECT_WINDOW_MS);
      stop();
      const cpuDrop = broker.cpuSeconds() - cpuDrop0;
      const eDrop = typingEntry.flatMap((t) => t.latencies.slice(marks.get(t)));
      const healthz = await probe.stop();
      await sleep(500);
      const n = entries.length;
      const note = failure
        ? `only ${n} of ${wanted} sessions could be opened: ${failure}`
        : `${n} Entry sessions over ${targets.length} containers; direct: ${probes} direct exec shells typing alongside under the same load`;
      const pct = (s: number) => (s / typeSeconds) * 100;
      ctx.log(
        `concurrent: ${n} sessions, RSS idle ${(rssIdle / MB).toFixed(1)} MB, held ${(rssHeld / MB).toFixed(1)} MB, peak ${(rssPeak / MB).toFixed(1)} MB, ` +
          `CPU broker ${pct(cpu.broker).toFixed(1)}% dockerd ${pct(cpu.dockerd).toFixed(1)}% shims ${pct(cpu.shim).toFixed(1)}% of a core; ` +
          `echo p50/p99 entry ${quantile(e, 0.5).toFixed(2)}/${quantile(e, 0.99).toFixed(2)} ms, direct ${quantile(d, 0.5).toFixed(2)}/${quantile(d, 0.99).toFixed(2)} ms`,
      );
      return [
        figure('concurrent_rss', 'MB', n, rssPeak / MB, null, {
          extra: {
            sessions: n,
            containers: targets.length,
            rss_idle_MB: rssIdle / MB,
            rss_held_MB: rssHeld / MB,
            rss_per_session_KB: (rssPeak - rssIdle) / n / 1000,
            cpu_broker_percent_of_core: pct(cpu.broker),
            cpu_dockerd_percent_of_core: pct(cpu.dockerd),
            cpu_shims_percent_of_core: pct(cpu.shim),
            cpu_client_percent_of_core: pct(cpu.client),
            open_seconds: openSeconds,
            open_broker_cpu_s: openCpu,
          },
          note: `${note}; RSS has no direct counterpart (a direct client has no broker)`,
        }),
        figure('concurrent_echo_p99', 'ms', e.length, quantile(e, 0.99), d.length > 0 ? quantile(d, 0.99) : null, {
          added: true,
          extra: {
            sessions: n,
            direct_probes: probes,
            direct_samples: d.length,
            entry_p50_ms: quantile(e, 0.5),
            direct_p50_ms: quantile(d, 0.5),
            entry_max_ms: Math.max(...e),
            entry_unanswered_within_1s: unanswered(typingEntry),
            direct_unanswered_within_1s: unanswered(typingDirect),
            client_event_loop_delay_p99_ms: loop.percentile(99) / 1e6,
            broker_healthz_p99_ms: quantile(healthz.slice(0, probeTyping), 0.99),
            broker_healthz_max_ms: Math.max(...healthz.slice(0, probeTyping)),
            [`entry_p99_ms_while_${DISCONNECTS}_clients_drop`]: quantile(eDrop, 0.99),
            [`entry_max_ms_while_${DISCONNECTS}_clients_drop`]: Math.max(...eDrop),
            [`broker_healthz_max_ms_while_${DISCONNECTS}_clients_drop`]: Math.max(...healthz.slice(probeTyping)),
            broker_cpu_s_for_the_drops: cpuDrop,
          },
          note,
        }),
      ];
    } finally {
      for (const s of entries) if (s.ws.readyState === s.ws.OPEN) s.send(LEAVE);
      for (const d of directs) d.send(LEAVE);
      const all = Promise.all([...entries.map((s) => s.closed), ...directs.map((d) => d.ended)]);
      const closedInTime = await Promise.race([all.then(() => true), sleep(60_000).then(() => false)]);
      if (!closedInTime) for (const s of entries) s.ws.terminate();
      for (const d of directs) d.close();
      await broker.stop();
    }
  },
};
