import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import WebSocket from 'ws';
import { SESSION_ENV } from '../../broker/backend/session-mark.js';
import { StdinEncoder, wrapCommand } from '../../broker/kubernetes/exec-command.js';
import { type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs, startKubeCluster } from '../../test/helpers/kube-cluster.js';
import { ROOT } from '../../test/helpers/repo.js';
import { type BrokerChild, startBroker } from '../broker.js';
import type { BenchTarget } from '../containers.js';
import { EntrySession, type OutputHandler } from '../entry-client.js';
import { type BenchContext, figure, type Figure, type FigureName, type Suite, utf8 } from '../figure.js';
import { cpuSeconds, findPids, MB } from '../proc-stats.js';
import { runList } from '../sides.js';
import { median, msSince, now, quantile, sleep } from '../stats.js';
import { opened } from '../ws-open.js';
import { echoRounds, RAW_ECHO, untilOutput } from './echo.js';

/**
 * The Kubernetes backend against what `kubectl exec` does: a `pods/exec` WebSocket to the same
 * apiserver with the admin credentials, speaking the channel protocol directly (kubectl 1.20
 * uses SPDY; the bytes through apiserver, kubelet and the runtime are the same). Both sides run
 * in one pod, alternating per repetition.
 */

export const KUBE_FIGURES: FigureName[] = ['kube_setup', 'kube_echo_p50', 'kube_echo_p99', 'kube_output'];

const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4 } as const;
const STATE_DIR = process.env['ENTRY_KUBE_STATE'] ?? '/var/lib/entry/kube';
const LEASE_SCRIPT = join(ROOT, 'deploy/dev/kube-lease.sh');

/** The exit code in a v4 status message (a metav1.Status). */
function exitCodeOf(status: { status?: string; reason?: string; message?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } }): number {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (status.reason === 'NonZeroExitCode' && cause?.message !== undefined) return Number(cause.message);
  throw new Error(`exec failed: ${status.message ?? JSON.stringify(status)}`);
}

/** A direct `pods/exec` over `v4.channel.k8s.io`: no wrapper, no index, no relay. */
export class KubeDirectExec {
  onOutput: OutputHandler = () => undefined;
  /** The exit code from the status channel. */
  readonly exit: Promise<number>;
  readonly closed: Promise<void>;

  private constructor(private readonly ws: WebSocket) {
    let resolveExit!: (code: number) => void;
    let rejectExit!: (err: Error) => void;
    let settled = false;
    this.exit = new Promise<number>((resolve, reject) => {
      resolveExit = resolve;
      rejectExit = reject;
    });
    this.exit.catch(() => undefined);
    ws.on('message', (m: Buffer) => {
      // v4 servers open each stream with an empty message: a channel byte alone.
      if (m.length < 2) return;
      const channel = m[0];
      if (channel === CHANNEL.stdout) this.onOutput(m.subarray(1), 'stdout');
      else if (channel === CHANNEL.stderr) this.onOutput(m.subarray(1), 'stderr');
      else if (channel === CHANNEL.status && !settled) {
        settled = true;
        try {
          resolveExit(exitCodeOf(JSON.parse(m.subarray(1).toString('utf8'))));
        } catch (err) {
          rejectExit(err as Error);
        }
      }
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', () => {
        if (!settled) rejectExit(new Error('exec closed without a status'));
        settled = true;
        resolve();
      }),
    );
  }

  static open(k: KubeCluster, namespace: string, pod: string, o: { cmd: string[]; tty: boolean; stdin: boolean }): Promise<KubeDirectExec> {
    const q = new URLSearchParams();
    for (const c of o.cmd) q.append('command', c);
    q.set('container', 'main');
    q.set('stdin', String(o.stdin));
    q.set('stdout', 'true');
    q.set('stderr', String(!o.tty));
    q.set('tty', String(o.tty));
    const url = `${k.apiserverUrl.replace(/^https/, 'wss')}/api/v1/namespaces/${namespace}/pods/${pod}/exec?${q}`;
    const ws = new WebSocket(url, ['v4.channel.k8s.io'], { ca: k.ca, headers: { authorization: `Bearer ${k.adminToken}` }, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    return opened(ws, 'apiserver').then(() => {
      const d = new KubeDirectExec(ws);
      // As kubectl does for a terminal: the size first.
      if (o.tty) ws.send(Buffer.concat([Buffer.of(CHANNEL.resize), Buffer.from(JSON.stringify({ Width: 80, Height: 24 }))]));
      return d;
    });
  }

  send(data: Uint8Array): void {
    const frame = Buffer.allocUnsafe(data.byteLength + 1);
    frame[0] = CHANNEL.stdin;
    frame.set(data, 1);
    this.ws.send(frame);
  }

  close(): void {
    this.ws.close(1000);
  }
}

/** The cluster, a namespace of the run's own with one pod, and a broker serving only it. */
interface KubeRig {
  cluster: KubeCluster;
  namespace: string;
  pod: string;
  target: BenchTarget;
  broker: BrokerChild;
  token: string;
  /** Cluster processes on the data path, for CPU per GB. */
  pids: Record<'apiserver' | 'kubelet' | 'dockerd' | 'shim', number[]>;
}

/** Why the figures cannot run here, or null. */
function unavailable(): string | null {
  if (!kubeClusterPossible()) return 'no Kubernetes cluster possible on this machine (needs root and apt-get: deploy/dev/kube-up.sh)';
  // Unbuilt binaries take ~12 min to build (kubeStartTimeoutMs is then 30 min): not inside a bench run.
  if (kubeStartTimeoutMs() > 180_000) return 'the cluster binaries are not built: run deploy/dev/kube-build.sh once (~12 min)';
  return null;
}

/** Namespaces of benches that are gone (killed before their clean-up). */
async function removeStaleNamespaces(k: KubeCluster): Promise<number> {
  const res = await k.api('GET', '/api/v1/namespaces?labelSelector=entry.bench%3D1');
  let removed = 0;
  for (const ns of (res.body?.items ?? []) as Array<{ metadata: { name: string; labels?: Record<string, string> } }>) {
    const pid = Number(ns.metadata.labels?.['entry.bench-pid']);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      // No such process: its bench is gone.
    }
    if (!alive) {
      await k.api('DELETE', `/api/v1/namespaces/${ns.metadata.name}`);
      removed++;
    }
  }
  return removed;
}

/**
 * Gives the lease back as soon as the figures are done, so that a cluster the bench started
 * stops now rather than idling under the figures and profiles after it (the watcher releases
 * again when the bench exits, which is harmless).
 */
function releaseLease(): Promise<void> {
  // Under a parent with IPC (a test runner), the lease is the parent's (kube-cluster.ts): keep it.
  if (typeof process.send === 'function') return Promise.resolve();
  return new Promise((resolve) =>
    execFile('bash', [LEASE_SCRIPT, 'release', String(process.pid)], { env: { ...process.env, ENTRY_KUBE_STATE: STATE_DIR } }, () => resolve()),
  );
}

async function openRig(ctx: BenchContext, cluster: KubeCluster, cleanups: Array<() => Promise<unknown>>): Promise<KubeRig> {
  const stale = await removeStaleNamespaces(cluster);
  if (stale > 0) ctx.log(`kube: removed ${stale} namespaces left by earlier runs`);
  const suffix = randomBytes(3).toString('hex');
  const namespace = `entry-bench-${suffix}`;
  const ns = await cluster.api('POST', '/api/v1/namespaces', { metadata: { name: namespace, labels: { 'entry.bench': '1', 'entry.bench-pid': String(process.pid) } } });
  if (ns.status !== 201) throw new Error(`namespace ${namespace}: ${ns.status} ${JSON.stringify(ns.body)}`);
  cleanups.push(() => cluster.api('DELETE', `/api/v1/namespaces/${namespace}`));
  const target: BenchTarget = { id: '', app: `kbench${suffix}`, proc: 'main', instance: '0' };
  const pod = `${target.app}-main-0`;
  target.id = pod;
  const res = await cluster.api('POST', `/api/v1/namespaces/${namespace}/pods`, {
    metadata: { name: pod, labels: { 'entry.app': target.app, 'entry.proc': target.proc, 'entry.instance': target.instance } },
    spec: {
      // A fresh namespace has no service-account token yet, and the pod needs none.
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image: 'entry-demo:latest', imagePullPolicy: 'IfNotPresent' }],
    },
  });
  if (res.status !== 201) throw new Error(`pod ${pod}: ${res.status} ${JSON.stringify(res.body)}`);
  const running = await cluster.waitForPodRunning(namespace, pod);
  const containerId = String(running.status.containerStatuses[0].containerID).replace(/^docker:\/\//, '');

  const broker = await startBroker({ flags: ['--kubeconfig', cluster.kubeconfigPath, '--kube-namespace', namespace] });
  // A signal may end the bench before `finally`: the broker child must not outlive it.
  const kill = () => broker.child.kill('SIGKILL');
  process.once('exit', kill);
  cleanups.push(async () => {
    process.off('exit', kill);
    await broker.stop(5_000);
  });
  const token = await broker.mint();

  // The broker lists pods when it starts: wait until it can enter this one.
  const deadline = Date.now() + 30_000;
  for (;;) {
    let why: string;
    try {
      const s = await EntrySession.open(broker.wsUrl, token, target, { argv: [utf8('true')], tty: false });
      const code = await s.exit;
      await s.closed;
      if (code === 0) break;
      why = `true exited with ${code}`;
    } catch (err) {
      why = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`the broker cannot enter ${namespace}/${pod}: ${why}`);
    await sleep(200);
  }

  const clusterDockerd = cluster.dockerHost.replace(/^unix:\/\//, '');
  return {
    cluster,
    namespace,
    pod,
    target,
    broker,
    token,
    pids: {
      apiserver: findPids((_cmd, comm) => comm === 'kube-apiserver'),
      kubelet: findPids((_cmd, comm) => comm === 'kubelet'),
      dockerd: findPids((cmd, comm) => comm === 'dockerd' && cmd.includes(clusterDockerd)),
      shim: findPids((cmd, comm) => comm.startsWith('containerd-shim') && cmd.includes(containerId)),
    },
  };
}

/** Runs both sides `reps` times, alternating which goes first, after one untimed run each. */
async function alternate<T>(reps: number, entry: () => Promise<T>, direct: () => Promise<T>): Promise<{ e: T[]; d: T[] }> {
  const [e, d] = await rotate(reps, [entry, direct]);
  return { e: e!, d: d! };
}

/** Runs every side `reps` times, rotating which goes first, after `warmUp` runs each (untimed; one unless told). */
async function rotate<T>(reps: number, sides: Array<() => Promise<T>>, warmUp: Array<() => Promise<unknown>> = sides): Promise<T[][]> {
  for (const side of warmUp) await side();
  const out = sides.map(() => [] as T[]);
  for (let i = 0; i < reps; i++) {
    for (let k = 0; k < sides.length; k++) {
      const j = (i + k) % sides.length;
      out[j]!.push(await sides[j]!());
    }
  }
  return out;
}

// ---- kube_setup: connect → exit code of `true` ----

async function setupFigure(ctx: BenchContext, rig: KubeRig): Promise<Figure> {
  const reps = ctx.quick ? 8 : 30;
  const entry = async () => {
    const t0 = now();
    const s = await EntrySession.open(rig.broker.wsUrl, rig.token, rig.target, { argv: [utf8('true')], tty: false });
    const code = await s.exit;
    const ms = msSince(t0);
    if (code !== 0) throw new Error(`true exited with ${code} through Entry`);
    await s.closed;
    return ms;
  };
  const directOf = (cmd: string[], stdin: Buffer | undefined) => async () => {
    const t0 = now();
    const d = await KubeDirectExec.open(rig.cluster, rig.namespace, rig.pod, { cmd, tty: false, stdin: stdin !== undefined });
    if (stdin) d.send(stdin);
    const code = await d.exit;
    const ms = msSince(t0);
    if (code !== 0) throw new Error(`${cmd[0]} exited with ${code} directly`);
    await d.closed;
    return ms;
  };
  // What `kubectl exec POD -- true` asks for: no stdin, no TTY.
  const direct = directOf(['true'], undefined);
  // The exec the broker asks for: Kubernetes exec takes no environment, so `true` runs inside
  // Entry's wrapper script (session mark, stdin pump), with stdin attached. Timed directly, it
  // tells the wrapper's share of the added time from the broker's own. Its stdin is what the
  // broker sends for a client that sends none: the pump's end, and the answer to the command's
  // end (sent at once here; the broker sends it when told, a round trip later).
  const pumpEnd = new StdinEncoder().end();
  const wrapped = directOf(wrapCommand({ cmd: ['true'], env: [`${SESSION_ENV}=bench`], workdir: '', stdinPump: true }), Buffer.concat([pumpEnd, pumpEnd]));
  const [e, d, w] = (await rotate(reps, [entry, direct, wrapped])) as [number[], number[], number[]];
  ctx.log(`kube_setup: entry ${median(e).toFixed(1)} ms, direct ${median(d).toFixed(1)} ms, direct with Entry's wrapper ${median(w).toFixed(1)} ms`);
  return figure('kube_setup', 'ms', reps, median(e), median(d), {
    added: true,
    extra: {
      entry_min: Math.min(...e),
      direct_min: Math.min(...d),
      direct_wrapped_ms: median(w),
      entry_minus_direct_wrapped_ms: median(e) - median(w),
    },
  });
}

// ---- kube_echo_p50/p99: one byte at a time into `stty raw -echo; cat` on a TTY ----

async function echoFigures(ctx: BenchContext, rig: KubeRig): Promise<Figure[]> {
  const samples = ctx.quick ? 300 : 3000;
  const entry = await EntrySession.open(rig.broker.wsUrl, rig.token, rig.target, { argv: RAW_ECHO.map((a) => Buffer.from(a)), tty: true, cols: 80, rows: 24 });
  const entryReady = untilOutput(entry, 0x52);
  const direct = await KubeDirectExec.open(rig.cluster, rig.namespace, rig.pod, { cmd: RAW_ECHO, tty: true, stdin: true });
  const directReady = untilOutput(direct, 0x52);
  try {
    await Promise.all([entryReady, directReady]);
    const [e, d] = (await echoRounds([entry, direct], samples)) as [number[], number[]];
    const q = (x: number[], p: number) => quantile(x, p).toFixed(3);
    ctx.log(`kube_echo: entry p50 ${q(e, 0.5)} p99 ${q(e, 0.99)} ms; direct p50 ${q(d, 0.5)} p99 ${q(d, 0.99)} ms`);
    return [
      figure('kube_echo_p50', 'ms', samples, quantile(e, 0.5), quantile(d, 0.5), { added: true }),
      figure('kube_echo_p99', 'ms', samples, quantile(e, 0.99), quantile(d, 0.99), { added: true, extra: { entry_max: Math.max(...e), direct_max: Math.max(...d) } }),
    ];
  } finally {
    entry.close();
    // Closing the exec stream leaves `cat` running in the pod (kubernetes#89031); the pod goes with the namespace.
    direct.close();
    await Promise.all([entry.closed, direct.closed]);
  }
}

// ---- kube_output: `head -c N /dev/zero` without a TTY, first byte → last byte ----

type Party = 'broker' | 'apiserver' | 'kubelet' | 'dockerd' | 'shim' | 'client';
const PARTIES: Party[] = ['broker', 'apiserver', 'kubelet', 'dockerd', 'shim', 'client'];

function cpuSnapshot(rig: KubeRig): Record<Party, number> {
  const sum = (pids: number[]) =>
    pids.reduce((s, pid) => {
      try {
        return s + cpuSeconds(pid);
      } catch {
        return s;
      }
    }, 0);
  const self = process.cpuUsage();
  return {
    broker: sum([rig.broker.pid]),
    apiserver: sum(rig.pids.apiserver),
    kubelet: sum(rig.pids.kubelet),
    dockerd: sum(rig.pids.dockerd),
    shim: sum(rig.pids.shim),
    client: (self.user + self.system) / 1e6,
  };
}

interface Run {
  rate: number;
  cpu: Record<Party, number>;
}

/** Counts stdout until `bytes` have arrived; resolves with the first → last byte time in s. */
function countOutput(side: { onOutput: OutputHandler }, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0;
    let first = 0n;
    side.onOutput = (data, stream) => {
      if (stream === 'stderr') {
        reject(new Error(`stderr: ${Buffer.from(data).toString('utf8').slice(0, 200)}`));
        return;
      }
      if (got === 0) first = now();
      got += data.length;
      if (got >= bytes) {
        side.onOutput = () => undefined;
        resolve(Number(now() - first) / 1e9);
      }
    };
  });
}

/** Bytes `seq 1 n` prints. */
function seqBytes(n: number): number {
  let total = 0;
  for (let digits = 1, lo = 1; lo <= n; digits++, lo *= 10) total += (Math.min(n, lo * 10 - 1) - lo + 1) * (digits + 1);
  return total;
}

async function outputRun(rig: KubeRig, side: 'entry' | 'direct', cmd: string[], bytes: number): Promise<Run> {
  const cpu0 = cpuSnapshot(rig);
  let seconds: number;
  let code: number;
  if (side === 'entry') {
    const s = await EntrySession.open(rig.broker.wsUrl, rig.token, rig.target, { argv: cmd.map((a) => Buffer.from(a)), tty: false });
    seconds = await countOutput(s, bytes);
    code = await s.exit;
    await s.closed;
  } else {
    // What `kubectl exec POD -- CMD` asks for: stdout and stderr, no stdin, no TTY.
    const d = await KubeDirectExec.open(rig.cluster, rig.namespace, rig.pod, { cmd, tty: false, stdin: false });
    seconds = await countOutput(d, bytes);
    code = await d.exit;
    await d.closed;
  }
  if (code !== 0) throw new Error(`${cmd.join(' ')} exited with ${code} (${side})`);
  const cpu1 = cpuSnapshot(rig);
  const cpu = Object.fromEntries(PARTIES.map((p) => [p, cpu1[p] - cpu0[p]])) as Record<Party, number>;
  return { rate: bytes / MB / seconds, cpu };
}

/** Bytes per run: 32 MiB quick, 512 MiB full (the path moves 30–80 MB/s here); BENCH_TRANSFER_MIB overrides, as for the Docker figures. */
function outputBytes(quick: boolean): number {
  const mib = Number(process.env['BENCH_TRANSFER_MIB'] ?? 0);
  return (mib > 0 ? mib : quick ? 32 : 512) * 1024 * 1024;
}

async function outputFigure(ctx: BenchContext, rig: KubeRig): Promise<Figure> {
  const bytes = outputBytes(ctx.quick);
  const reps = ctx.quick ? 3 : 5;
  const head = (n: number) => ['head', '-c', String(n), '/dev/zero'];
  const warm = Math.min(bytes, 8 * 1024 * 1024);
  const [e, d] = (await rotate(
    reps,
    [() => outputRun(rig, 'entry', head(bytes), bytes), () => outputRun(rig, 'direct', head(bytes), bytes)],
    [() => outputRun(rig, 'entry', head(warm), warm), () => outputRun(rig, 'direct', head(warm), warm)],
  )) as [Run[], Run[]];
  // Line output as well: `seq` writes stdio blocks of a few KiB (many small messages) where head writes large ones.
  const seqN = ctx.quick ? 1_000_000 : 2_000_000;
  const seq = ['seq', '1', String(seqN)];
  const seqRuns = await alternate(ctx.quick ? 1 : 3, () => outputRun(rig, 'entry', seq, seqBytes(seqN)), () => outputRun(rig, 'direct', seq, seqBytes(seqN)));
  const rate = (runs: Run[]) => median(runs.map((r) => r.rate));
  const extra: Record<string, number | string> = {
    bytes,
    entry_runs_MBps: runList(e.map((r) => r.rate)),
    direct_runs_MBps: runList(d.map((r) => r.rate)),
    seq_lines: seqN,
    seq_entry_MBps: rate(seqRuns.e),
    seq_direct_MBps: rate(seqRuns.d),
    seq_ratio: rate(seqRuns.e) / rate(seqRuns.d),
  };
  // Everyone on the path shares the cores: CPU seconds per GB moved, per party (medians).
  for (const [side, runs] of [['entry', e], ['direct', d]] as const) {
    for (const party of PARTIES) {
      if (side === 'direct' && party === 'broker') continue;
      extra[`${side}_cpu_${party}_s_per_GB`] = median(runs.map((r) => r.cpu[party] / (bytes / 1e9)));
    }
  }
  const f = figure('kube_output', 'MB/s', reps, rate(e), rate(d), { extra });
  ctx.log(`kube_output: entry ${f.entry} MB/s, direct ${f.direct} MB/s; seq entry ${rate(seqRuns.e).toFixed(1)}, direct ${rate(seqRuns.d).toFixed(1)} MB/s`);
  return f;
}

/**
 * The Kubernetes figures. They run where a cluster is possible, starting it when it is not up
 * (a cluster this run started stops when the figures are done); elsewhere they are skipped,
 * with the reason in each figure's note.
 */
export const kubernetes: Suite = {
  names: KUBE_FIGURES,
  async run(ctx): Promise<Figure[]> {
    const why = unavailable();
    if (why) {
      ctx.log(`kube_*: skipped: ${why}`);
      return KUBE_FIGURES.map((name) => ({ ...figure(name, '', 0, null, null), note: `skipped: ${why}` }));
    }
    const t0 = Date.now();
    const cluster = await startKubeCluster();
    ctx.log(`kube: cluster ${cluster.startedHere ? 'started' : 'already up'} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const cleanups: Array<() => Promise<unknown>> = [releaseLease];
    try {
      const rig = await openRig(ctx, cluster, cleanups);
      const figures = [await setupFigure(ctx, rig), ...(await echoFigures(ctx, rig)), await outputFigure(ctx, rig)];
      for (const f of figures) f.extra = { ...f.extra, cluster_started_by_run: cluster.startedHere ? 1 : 0 };
      return figures;
    } finally {
      // In reverse: the broker before the namespace, the lease last.
      for (const c of cleanups.reverse()) await c().catch((err: unknown) => ctx.log(`kube: clean-up failed: ${(err as Error).message}`));
    }
  },
};
