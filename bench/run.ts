#!/usr/bin/env node
/**
 * Entry's benchmark: each figure measured through Entry and through direct dockerode exec in
 * the same run, alternating. Usage:
 *   node dist/bench/run.js [--quick] [--only NAME[,NAME…]] [--profile | --no-profile] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { type BrokerChild, setRecording, startBroker } from './broker.js';
import { BenchContainers, removeStaleBenchContainers } from './containers.js';
import { NullRelay } from './null-relay.js';
import { type BenchContext, type Figure, FIGURE_NAMES, type FigureName, type Suite, TARGETS } from './figure.js';
import { cliRoundtrip } from './figures/cli.js';
import { concurrent } from './figures/concurrent.js';
import { echo } from './figures/echo.js';
import { kubernetes } from './figures/kubernetes.js';
import { roundtripRaw } from './figures/roundtrip.js';
import { massDisconnect } from './figures/mass-disconnect.js';
import { setupInteractive, setupScripted } from './figures/setup.js';
import { stall } from './figures/stall.js';
import { stdinRaw } from './figures/stdin.js';
import { throughputRaw, throughputTty } from './figures/throughput.js';
import { profileBroker } from './profile.js';
import { describeMachine, machineLine, table } from './report.js';

/**
 * In run order: the shared-broker figures first, the ones with their own broker last, and
 * Kubernetes at the very end, so that a cluster the run starts does not idle under the others.
 */
const SUITES: Suite[] = [setupInteractive, setupScripted, cliRoundtrip, echo, throughputTty, throughputRaw, stdinRaw, roundtripRaw, stall, concurrent, massDisconnect, kubernetes];

interface Options {
  quick: boolean;
  only: Set<FigureName>;
  profile: boolean;
  recording: boolean;
  out: string;
}

const USAGE = `usage: node dist/bench/run.js [--quick] [--only NAME[,NAME…]] [--profile|--no-profile] [--no-recording] [--out FILE]
figures: ${FIGURE_NAMES.join(', ')}`;

function parseArgs(argv: string[]): Options {
  let quick = false;
  let profile: boolean | undefined;
  let recording = true;
  let out = fileURLToPath(new URL('../../bench/results.json', import.meta.url));
  const only = new Set<FigureName>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--profile') profile = true;
    else if (a === '--no-profile') profile = false;
    else if (a === '--no-recording') recording = false;
    else if (a === '--only' || a.startsWith('--only=')) {
      for (const name of value().split(',').map((s) => s.trim()).filter(Boolean)) {
        if (!(FIGURE_NAMES as readonly string[]).includes(name)) throw new Error(`unknown figure ${name}\n${USAGE}`);
        only.add(name as FigureName);
      }
    } else if (a === '--out' || a.startsWith('--out=')) out = value();
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  // Profiling adds a few minutes: on by default for a full run of everything only.
  return { quick, only, profile: profile ?? (!quick && only.size === 0), recording, out };
}

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/**
 * Bound on one figure, so a hung transfer ends the run instead of holding it. A full TTY
 * figure moves 12 GiB through the pty path (3 runs × 1 GiB × 4 sides): at 15 MB/s, seen on a
 * slow 2-core machine, that is 14 minutes; 30 leaves room. BENCH_FIGURE_TIMEOUT_S overrides.
 */
const FIGURE_TIMEOUT_MS = { quick: 90_000, full: 1_800_000 };

function figureTimeoutMs(quick: boolean): number {
  const seconds = Number(process.env['BENCH_FIGURE_TIMEOUT_S']);
  if (Number.isFinite(seconds) && seconds > 0) return seconds * 1000;
  return quick ? FIGURE_TIMEOUT_MS.quick : FIGURE_TIMEOUT_MS.full;
}

class FigureTimeout extends Error {}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FigureTimeout(`${what} took longer than ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  setRecording(options.recording);
  const dockerSocket = process.env['DOCKER_SOCKET'] ?? '/var/run/docker.sock';
  const docker = new Docker({ socketPath: dockerSocket });
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`no Docker engine answers at ${dockerSocket}: ${(err as Error).message}`);
  }
  const machine = await describeMachine(docker);
  log(`${options.quick ? 'quick' : 'full'} run${options.recording ? '' : ' without session recordings'} on ${machineLine(machine)}`);
  const load0 = loadavg()[0]!;
  if (load0 > machine.nproc) log(`warning: load average ${load0.toFixed(1)} on ${machine.nproc} cores: other work will show in the figures`);
  const containers = new BenchContainers(docker);
  let broker: BrokerChild | undefined;
  let relay: NullRelay | undefined;
  let wsRelay: NullRelay | undefined;
  // Clean up on Ctrl-C or a kill too: containers and the broker child must not outlive the run.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: cleaning up`);
    relay?.stop();
    wsRelay?.stop();
    void Promise.allSettled([broker?.stop(2_000), containers.removeAll()]).then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const figures: Figure[] = [];
  const suites = SUITES.filter((s) => options.only.size === 0 || s.names.some((n) => options.only.has(n)));
  const started = Date.now();
  try {
    await containers.ensureImage();
    const stale = await removeStaleBenchContainers(docker);
    if (stale > 0) log(`removed ${stale} containers left by earlier runs`);
    const target = await containers.start('main', 1);
    broker = await startBroker();
    relay = await NullRelay.start(dockerSocket, 'tcp');
    wsRelay = await NullRelay.start(dockerSocket, 'ws');
    const ctx: BenchContext = { docker, broker, token: await broker.mint(), target, containers, relay, wsRelay, quick: options.quick, log };
    for (const suite of suites) {
      const t0 = Date.now();
      try {
        const produced = await withTimeout(suite.run(ctx), figureTimeoutMs(options.quick), suite.names.join('/'));
        // Other work on the machine shows in every figure: keep the load beside the numbers.
        const load = Number(loadavg()[0]!.toFixed(2));
        for (const f of produced) f.extra = { ...f.extra, load_1m: load };
        figures.push(...produced.filter((f) => options.only.size === 0 || options.only.has(f.name)));
      } catch (err) {
        const message = (err as Error).message;
        log(`${suite.names.join('/')} failed: ${message}`);
        if (err instanceof FigureTimeout) {
          // The figure's transfers are still running: end them, or they would share the
          // machine with every figure after it.
          await containers.restartAll();
          log('restarted the run\'s containers to end what the figure left running');
        }
        for (const name of suite.names) {
          if (options.only.size > 0 && !options.only.has(name)) continue;
          figures.push({ name, entry: null, direct: null, ratio: null, unit: '', runs: 0, target: TARGETS[name].text, met: null, error: message });
        }
      }
      log(`${suite.names.join('/')} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    if (options.profile) {
      const dir = fileURLToPath(new URL(`../../bench/profiles/${options.recording ? '' : 'no-recording/'}`, import.meta.url));
      try {
        const summary = await profileBroker(ctx, dir, options.quick ? 0.125 : 1, options.only);
        process.stdout.write(`\nBroker profiles (${dir}):\n\n${summary}\n`);
      } catch (err) {
        log(`profiling failed: ${(err as Error).message}`);
      }
    }
  } finally {
    relay?.stop();
    wsRelay?.stop();
    await broker?.stop();
    await containers.removeAll();
  }
  writeFileSync(options.out, `${JSON.stringify(figures, null, 2)}\n`);
  const load = `load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end`;
  process.stdout.write(`\n${machineLine(machine)}; ${options.quick ? 'quick' : 'full'} run${options.recording ? '' : ' without session recordings'}, ${((Date.now() - started) / 1000).toFixed(0)} s, ${load}\n\n${table(figures)}\n\nwritten to ${options.out}\n`);
  return figures.some((f) => f.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
