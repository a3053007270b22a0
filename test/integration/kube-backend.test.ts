import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecSpec } from '../../broker/backend/backend.js';
import { execSpecs } from '../helpers/exec-specs.js';
import { Backends } from '../../broker/backend/backends.js';
import { EntryError } from '../../broker/errors.js';
import { execCollect } from '../../broker/kubernetes/exec-socket.js';
import { KubeClient } from '../../broker/kubernetes/kube-client.js';
import { POD_STOP_SETTLE_MS } from '../../broker/kubernetes/pod-fate.js';
import { createKubernetesBackend, type KubernetesBackend } from '../../broker/kubernetes/kubernetes-backend.js';
import { ConfigError } from '../../broker/config/config-error.js';
import { createLogger } from '../../broker/log.js';
import { EXEC_RULES, type KubeCluster, kubeClusterPossible, kubeStartTimeoutMs } from '../helpers/kube-cluster.js';
import { type KubeNamespace, kubeNamespace } from '../helpers/kube-namespace.js';
import { drive, exitOf, type Outcome } from '../helpers/process-driver.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const log = createLogger(process.env.ENTRY_TEST_LOG === '1' ? 'debug' : 'silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!kubeClusterPossible())('the Kubernetes backend against a real cluster', () => {
  let space: KubeNamespace | undefined;
  let k: KubeCluster;
  let ns: string;
  let backend: KubernetesBackend;
  let backends: Backends;
  let deploymentPod = '';
  const spec = execSpecs('kb', 1_000);
  const run = async (target: [string, string, string], over: Partial<ExecSpec>, stdin?: Buffer) => {
    const t = await backends.resolve({ app: target[0], proc: target[1], instance: target[2] });
    const p = await t.open(spec(over));
    const d = drive(p);
    if (stdin) await d.writeAll(stdin);
    p.endInput();
    return d.done;
  };

  /** Every process in the pod's container whose environment carries `mark`, as `pid cmdline`. */
  const marked = async (pod: string, mark: string, container = 'main'): Promise<string[]> => {
    const script = `for d in /proc/[0-9]*; do if tr '\\0' '\\n' < $d/environ 2>/dev/null | grep -qxF "$1"; then echo "\${d#/proc/} $(tr '\\0' ' ' < $d/cmdline)"; fi; done`;
    const out = await k.kubectl(['exec', '-n', ns, pod, '-c', container, '--', 'sh', '-c', script, 'scan', mark]);
    return out.split('\n').filter((l) => l.trim());
  };

  beforeAll(async () => {
    space = await kubeNamespace({ prefix: 'kb' });
    ({ cluster: k, ns } = space);
    const demo = { image: 'entry-demo:latest', imagePullPolicy: 'IfNotPresent' };
    await space.create({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'web' },
      spec: {
        serviceName: 'web',
        replicas: 2,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'web' } },
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'web' } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', ...demo }] },
        },
      },
    });
    await space.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'api' } },
        template: {
          metadata: { labels: { 'app.kubernetes.io/name': 'shop', 'app.kubernetes.io/component': 'api' } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', ...demo }] },
        },
      },
    });
    const named = (name: string) => ['/bin/sh', '-c', `echo ${name} > /tmp/who; echo "hello from ${name}"; trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done`];
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'multi', labels: { 'entry.app': 'multi', 'entry.proc': 'worker', 'entry.instance': '1' }, annotations: { 'kubectl.kubernetes.io/default-container': 'main' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'side', ...demo, command: named('side') },
          { name: 'main', ...demo, command: named('main') },
        ],
      },
    });
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'nosh', labels: { 'app.kubernetes.io/name': 'bare', 'app.kubernetes.io/component': 'nosh' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'entry-demo:nosh', imagePullPolicy: 'IfNotPresent' }] },
    });
    // Never scheduled: no node has this label.
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'waiting', labels: { 'app.kubernetes.io/name': 'bare', 'app.kubernetes.io/component': 'pending' } },
      spec: { nodeSelector: { 'entry.test/no-such-node': 'x' }, containers: [{ name: 'main', ...demo }] },
    });
    // Deleted under a session by the test that uses it.
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'doomed', labels: { 'app.kubernetes.io/name': 'bare', 'app.kubernetes.io/component': 'doomed' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', ...demo }] },
    });
    // Deleted under a session too, but its first process ignores SIGTERM: the container runs on
    // through its grace period, and so does the session's command.
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'lingering', labels: { 'app.kubernetes.io/name': 'bare', 'app.kubernetes.io/component': 'lingering' } },
      spec: { terminationGracePeriodSeconds: 30, containers: [{ name: 'main', ...demo, command: ['sh', '-c', "trap '' TERM; while :; do sleep 1; done"] }] },
    });
    // Its container keeps exiting: the pod stays Running while the container waits to restart.
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'crashy', labels: { 'app.kubernetes.io/name': 'bare', 'app.kubernetes.io/component': 'crashy' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', ...demo, command: ['sh', '-c', 'exit 1'] }] },
    });
    // Held in Terminating by a finalizer, removed at the end.
    await space.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'leaving', finalizers: ['entry.test/hold'], labels: { 'app.kubernetes.io/name': 'bare', 'app.kubernetes.io/component': 'leaving' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', ...demo }] },
    });
    for (const pod of ['web-0', 'web-1', 'multi', 'nosh', 'leaving', 'doomed', 'lingering']) {
      for (let i = 0; i < 600; i++) {
        if ((await k.api('GET', `/api/v1/namespaces/${ns}/pods/${pod}`)).status === 200) break;
        await sleep(100);
      }
      await k.waitForPodRunning(ns, pod, 90_000);
    }
    for (let i = 0; i < 600 && !deploymentPod; i++) {
      const pods = await k.api('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent('app.kubernetes.io/component=api')}`);
      const running = pods.body.items?.find((p: any) => p.status?.phase === 'Running');
      if (running) deploymentPod = running.metadata.name;
      else await sleep(100);
    }
    expect(deploymentPod).not.toBe('');
    const del = await k.api('DELETE', `/api/v1/namespaces/${ns}/pods/leaving`);
    expect(del.status).toBeLessThan(300);

    ({ backend, backends } = await space.serve());
    expect(backend.status()).toEqual({ 'entry-kube': true });
  }, kubeStartTimeoutMs() + 180_000);

  afterAll(async () => {
    if (!space) return;
    await k.api('PATCH', `/api/v1/namespaces/${ns}/pods/leaving`, [{ op: 'remove', path: '/metadata/finalizers' }]).catch(() => undefined);
    await space.remove();
  }, 60_000);

  it('resolves StatefulSet pods by ordinal and a Deployment pod by its name, and lists them with their containers', async () => {
    for (const n of ['0', '1']) {
      const t = await backends.resolve({ app: 'shop', proc: 'web', instance: n });
      expect(t).toMatchObject({ backend: 'kubernetes', host: 'entry-kube', namespace: ns, name: `web-${n}`, state: 'running', image: 'entry-demo:latest' });
    }
    expect((await backends.resolve({ app: 'shop', proc: 'api', instance: deploymentPod })).name).toBe(deploymentPod);
    // A StatefulSet pod may be named by its pod name too.
    expect((await backends.resolve({ app: 'shop', proc: 'web', instance: 'web-1' })).name).toBe('web-1');
    // Explicit entry.* labels win.
    expect((await backends.resolve({ app: 'multi', proc: 'worker', instance: '1' })).name).toBe('multi');
    const listed = await backends.list();
    expect(listed.filter((t) => t.app === 'shop').map((t) => `${t.proc}/${t.instance}`)).toEqual(expect.arrayContaining(['web/0', 'web/1', `api/${deploymentPod}`]));
    expect(listed.find((t) => t.name === 'multi')).toMatchObject({ app: 'multi', proc: 'worker', instance: '1', namespace: ns, containers: ['side', 'main'], state: 'running' });
    expect(listed.find((t) => t.name === 'waiting')?.state).toBe('pending');
  });

  it('tells pending, terminating and not found apart', async () => {
    await expect(backends.resolve({ app: 'bare', proc: 'pending', instance: 'waiting' })).rejects.toMatchObject({ code: 'ENTRY_NOT_RUNNING', message: expect.stringContaining('is pending (waiting)') });
    await expect(backends.resolve({ app: 'bare', proc: 'leaving', instance: 'leaving' })).rejects.toMatchObject({ code: 'ENTRY_NOT_RUNNING', message: expect.stringContaining('is terminating (leaving)') });
    await expect(backends.resolve({ app: 'shop', proc: 'web', instance: '7' })).rejects.toMatchObject({ code: 'ENTRY_NOT_FOUND', message: expect.stringContaining('shop/web/7') });
    // A Running pod whose container is down (crash loop): the kubelet's refusal, told as not running.
    for (let i = 0; i < 300; i++) {
      const pod = (await k.api('GET', `/api/v1/namespaces/${ns}/pods/crashy`)).body;
      if (pod.status?.phase === 'Running' && pod.status.containerStatuses?.[0]?.state?.waiting) break;
      await sleep(100);
    }
    const crashy = await backends.resolve({ app: 'bare', proc: 'crashy', instance: 'crashy' });
    await expect(crashy.open(spec({ cmd: ['true'] }))).rejects.toMatchObject({ code: 'ENTRY_NOT_RUNNING', message: expect.stringContaining('container main of') });
    // Listed as Docker lists a container waiting to start again, not as running.
    await eventually(async () => (await backends.list()).find((t) => t.name === 'crashy')?.state === 'restarting', 'crashy listed as restarting');
  });

  it('picks the default-container annotation, a named container, and refuses an unknown one', async () => {
    const who = async (container: string) => (await run(['multi', 'worker', '1'], { cmd: ['cat', '/tmp/who'], container })).stdout.toString().trim();
    expect(await who('')).toBe('main');
    expect(await who('side')).toBe('side');
    const t = await backends.resolve({ app: 'multi', proc: 'worker', instance: '1' });
    await expect(t.open(spec({ cmd: ['true'], container: 'nope' }))).rejects.toMatchObject({ code: 'ENTRY_NOT_FOUND', message: expect.stringContaining('has no container "nope" (it has: side, main)') });
  });

  it('runs scripted commands: exit codes 0, 3 and 137, stdout and stderr apart, env and workdir', async () => {
    const ok = await run(['shop', 'web', '0'], { cmd: ['sh', '-c', 'echo out; echo err >&2; echo "$GREETING from $(pwd)"'], env: ['GREETING=hi there'], workdir: '/tmp' });
    expect(exitOf(ok)).toBe(0);
    expect(ok.stdout.toString()).toBe('out\nhi there from /tmp\n');
    expect(ok.stderr.toString()).toBe('err\n');
    expect(exitOf(await run(['shop', 'web', '0'], { cmd: ['sh', '-c', 'exit 3'] }))).toBe(3);
    expect(exitOf(await run(['shop', 'web', '1'], { cmd: ['sh', '-c', 'kill -9 $$'] }))).toBe(137);
    const missing = await run(['shop', 'web', '0'], { cmd: ['no-such-command'] });
    expect(exitOf(missing)).toBe(127);
  });

  it('refuses to run as another user, and says so when the image has no sh', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    await expect(t.open(spec({ cmd: ['id'], user: 'nobody' }))).rejects.toMatchObject({ code: 'ENTRY_BAD_REQUEST', message: expect.stringContaining('Kubernetes exec cannot run as another user') });
    const nosh = await run(['bare', 'nosh', 'nosh'], { cmd: ['/bin/busybox', 'true'] });
    expect(exitOf(nosh)).toMatch(/^error ENTRY_EXEC_FAILED: .*has no \/bin\/sh/);
  });

  it('pipes stdin byte-exact and delivers EOF without a TTY (v4 has no stdin close)', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const t0 = Date.now();
    const r = await run(['shop', 'web', '0'], { cmd: ['sh', '-c', 'cat; echo; echo done'] }, data);
    expect(exitOf(r)).toBe(0);
    expect(r.stdout.length).toBe(data.length + 6);
    expect(Buffer.compare(r.stdout.subarray(0, data.length), data)).toBe(0);
    console.log(`kube-backend: ${data.length} bytes of stdin round trip in ${Date.now() - t0} ms`);
    // Nothing at all on stdin: EOF at once.
    const empty = await run(['shop', 'web', '0'], { cmd: ['wc', '-c'] });
    expect(empty.stdout.toString().trim()).toBe('0');
  });

  it('takes stdin written a byte a message through the v4 pump in a few dd runs, byte-exact', async () => {
    // The original client types a byte a frame, and pastes so too: the pump runs a dd a
    // message, a few ms each, where small writes that come together go joined.
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    const burst = randomBytes(3_000);
    const p = await t.open(spec({ cmd: ['cat'] }));
    const d = drive(p);
    const t0 = performance.now();
    for (const b of burst) p.write(Buffer.from([b]));
    p.endInput();
    const r = await d.done;
    const burstMs = performance.now() - t0;
    expect(exitOf(r)).toBe(0);
    expect(Buffer.compare(r.stdout, burst)).toBe(0);
    // The same a byte a millisecond or so: a stream, not one read.
    const stream = randomBytes(300);
    const q = await t.open(spec({ cmd: ['cat'] }));
    const e = drive(q);
    const t1 = performance.now();
    for (const b of stream) {
      q.write(Buffer.from([b]));
      await sleep(1);
    }
    const writingMs = performance.now() - t1;
    q.endInput();
    const s = await e.done;
    const streamMs = performance.now() - t1;
    expect(exitOf(s)).toBe(0);
    expect(Buffer.compare(s.stdout, stream)).toBe(0);
    console.log(`kube-backend: ${burst.length} one-byte writes at once through the v4 pump: ${burstMs.toFixed(0)} ms to the exit; ${stream.length} over ${writingMs.toFixed(0)} ms: ${streamMs.toFixed(0)} ms to the exit`);
    // A dd a byte took several seconds for the burst alone.
    expect(burstMs).toBeLessThan(3_000);
  });

  it('passes on output that begins like the runtime\'s failure line without waiting for more', async () => {
    // `O` then nothing until the test answers it: held for the failure line, it would never come.
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    const p = await t.open(spec({ cmd: ['sh', '-c', 'printf O; read x; printf K'] }));
    const d = drive(p);
    await d.until((s) => s === 'O', 5_000);
    p.write(Buffer.from('\n'));
    const out = await d.done;
    expect(out.stdout.toString()).toBe('OK');
    expect(out.result).toEqual({ exitCode: 0 });
  });

  it('runs a TTY: initial size, resize, input, EOT as end of input', async () => {
    const sized = await run(['shop', 'web', '0'], { cmd: ['stty', 'size'], tty: true, size: { cols: 101, rows: 33 } });
    expect(sized.stdout.toString().trim()).toBe('33 101');
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '1' });
    const p = await t.open(spec({ cmd: ['sh'], tty: true, env: ['TERM=xterm', 'PS1=$ '], size: { cols: 80, rows: 24 } }));
    const d = drive(p);
    await d.until((s) => s.includes('$ '));
    p.resize(132, 43);
    p.write(Buffer.from('stty size\r'));
    await d.until((s) => s.includes('43 132'));
    // The shell's line editor flushes what was typed ahead when it hands the terminal over: cat's
    // own shell says when it has the terminal.
    p.write(Buffer.from("sh -c 'echo cat-ready; exec cat'; echo cat-done\r"));
    await d.until((s) => s.includes('\ncat-ready\r\n'));
    p.write(Buffer.from('typed\r'));
    await d.until((s) => (s.match(/typed/g) ?? []).length >= 2);
    p.endInput();
    // EOF ended cat: the echo of the command line, then its own line.
    await d.until((s) => (s.match(/cat-done/g) ?? []).length >= 2);
    p.write(Buffer.from('exit 4\r'));
    const end = await d.done;
    expect(exitOf(end)).toBe(4);
  });

  it('applies a resize sent before the process runs, and input typed right after a resize sees it', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    // No size at start, as original clients do: their WINCH comes after the upgrade.
    const p = await t.open(spec({ cmd: ['sh'], tty: true, env: ['TERM=xterm', 'PS1=$ '] }));
    const d = drive(p);
    p.resize(123, 45);
    p.write(Buffer.from('stty size; echo END1\r'));
    await d.until((s) => /45 123\r?\nEND1/.test(s));
    p.resize(100, 30);
    p.write(Buffer.from('stty size; echo END2\r'));
    await d.until((s) => /30 100\r?\nEND2/.test(s));
    p.write(Buffer.from('exit\r'));
    expect(exitOf(await d.done)).toBe(0);
  });

  it('delivers seq 1 2000000 byte for byte: many small messages, in order', async () => {
    // Its speed against a direct WebSocket exec is bench/'s kube_output (extra.seq_*), as a ratio.
    const expected = Buffer.from(Array.from({ length: 2_000_000 }, (_, i) => `${i + 1}\n`).join(''));
    const r = await run(['shop', 'web', '0'], { cmd: ['seq', '1', '2000000'] });
    expect(exitOf(r)).toBe(0);
    expect(r.stdout.length).toBe(expected.length);
    expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    expect(r.stderr.length).toBe(0);
  });

  it('holds output while the relay pauses it, and loses nothing when it resumes', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    const p = await t.open(spec({ cmd: ['sh', '-c', 'head -c 50000000 /dev/zero'] }));
    let paused = false;
    let bytes = 0;
    let atPause = 0;
    const done = new Promise<Outcome['result']>((resolve) =>
      p.start({
        output: (_s, d) => {
          bytes += d.length;
          if (!paused && bytes > 1_000_000 && atPause === 0) {
            paused = true;
            atPause = bytes;
            p.pauseOutput();
          }
        },
        drain: () => undefined,
        end: (r) => resolve(r as Outcome['result']),
      }),
    );
    p.endInput();
    await sleep(300);
    await sleep(700);
    // Paused: only what was already buffered (the socket's and the kernel's buffers) arrived.
    const whilePaused = bytes - atPause;
    expect(whilePaused).toBeLessThan(16 * 1024 * 1024);
    p.resumeOutput();
    expect(await done).toEqual({ exitCode: 0 });
    expect(bytes).toBe(50_000_000);
  });

  it('ends every process of a session whose client vanished (terminate), and only those', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '1' });
    const s = spec({ cmd: ['sh', '-c', 'sleep 301 & sleep 302 & echo started; exec sleep 303'], tty: true, terminateGraceMs: 1_000 });
    const other = spec({ cmd: ['sh', '-c', 'echo other; exec sleep 304'] });
    const p = await t.open(s);
    const keep = await t.open(other);
    const d = drive(p);
    const dk = drive(keep);
    await d.until((x) => x.includes('started'));
    await dk.until((x) => x.includes('other'));
    const mark = `ENTRY_SESSION=${s.sessionId}`;
    expect((await marked('web-1', mark)).length).toBe(3);
    await p.terminate();
    expect(await marked('web-1', mark)).toEqual([]);
    // The other session is untouched (its command, and on v4 its stdin pump).
    expect((await marked('web-1', `ENTRY_SESSION=${other.sessionId}`)).some((l) => l.includes('sleep 304'))).toBe(true);
    await keep.terminate();
    expect(await marked('web-1', `ENTRY_SESSION=${other.sessionId}`)).toEqual([]);
  });

  it("ends a command the kubelet started when the upgrade's answer was lost, and the open fails with the reason", async () => {
    // The broker reaches the apiserver through kubectl proxy (plain HTTP, so a proxy in front of
    // it can see the exec request go out), and that proxy holds the answer until the link is cut.
    const kubectlProxy = spawn(join(k.binDir, 'kubectl'), ['--kubeconfig', k.kubeconfigPath, 'proxy', '--port=0', '--address=127.0.0.1', '--reject-paths=^$'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const link = new TcpProxy('http://127.0.0.1:1');
    const dir = mkdtempSync(join(tmpdir(), 'entry-kube-proxy-'));
    let viaProxy: Backends | undefined;
    try {
      const port = await new Promise<number>((resolve, reject) => {
        kubectlProxy.stdout!.on('data', (d: Buffer) => {
          const m = /127\.0\.0\.1:(\d+)/.exec(d.toString());
          if (m) resolve(Number(m[1]));
        });
        kubectlProxy.on('exit', (code) => reject(new Error(`kubectl proxy exited (${code})`)));
      });
      link.to(`http://127.0.0.1:${port}`);
      await link.start();
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(kubeconfig, JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        // client-node takes http:// only with TLS checks off (there is no TLS to check).
        clusters: [{ name: 'via-proxy', cluster: { server: link.url, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'proxy', user: {} }],
        contexts: [{ name: 'via-proxy', context: { cluster: 'via-proxy', user: 'proxy', namespace: ns } }],
        'current-context': 'via-proxy',
      }));
      viaProxy = new Backends([createKubernetesBackend({ kubeconfig, namespaces: [ns], log })]);
      await viaProxy.start();
      const t = await viaProxy.resolve({ app: 'shop', proc: 'web', instance: '1' });
      link.tap = (chunk) => {
        if (/^GET \/api\/v1\/namespaces\/[^ ]+\/exec\?/.test(chunk.toString('latin1'))) setImmediate(() => link.freeze());
      };
      const s = spec({ cmd: ['sleep', '1041'], terminateGraceMs: 300 });
      const failed = t.open(s).then(
        () => undefined,
        (err: unknown) => err,
      );
      const mark = `ENTRY_SESSION=${s.sessionId}`;
      await eventually(async () => (await marked('web-1', mark)).length > 0, 'the command running', 15_000);
      link.tap = undefined;
      link.cut();
      const error = await failed;
      expect(error).toBeInstanceOf(EntryError);
      expect((error as EntryError).code).toBe('ENTRY_CLUSTER_UNAVAILABLE');
      await eventually(async () => (await marked('web-1', mark)).length === 0, 'the command ended', 15_000);
    } finally {
      viaProxy?.stop();
      await link.stop();
      kubectlProxy.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('leaves nothing behind when a command exits without reading stdin it was never told the end of', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '1' });
    const s = spec({ cmd: ['sh', '-c', 'echo bye'] });
    const p = await t.open(s);
    const d = drive(p);
    // No endInput: the client keeps its stdin open.
    expect(exitOf(await d.done)).toBe(0);
    // A v4 pump ends once the runtime has closed the exec's stdin after the exit, on a busy node a
    // moment later; one that never ends is still there after 10 s.
    const deadline = Date.now() + 10_000;
    let left = await marked('web-1', `ENTRY_SESSION=${s.sessionId}`);
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(100);
      left = await marked('web-1', `ENTRY_SESSION=${s.sessionId}`);
    }
    expect(left).toEqual([]);
  });

  it('gives the last output and the exit status of a command that ends while stdin still flows (yes | … head -c 10)', async () => {
    // Without the wrapper's end answered, the kubelet closed such an exec with stdin unread in
    // its socket, resetting it: output and status lost (ENTRY_STREAM_LOST) in most runs.
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    const chunk = Buffer.alloc(64 * 1024, 'y');
    const outcomes: string[] = [];
    for (let run = 0; run < 5; run++) {
      const p = await t.open(spec({ cmd: ['sh', '-c', 'head -c 10; exit 3'] }));
      const d = drive(p);
      let ended = false;
      void d.done.then(() => (ended = true));
      // Written as fast as the session takes it, for as long as the command runs (at most 64 MiB).
      for (let n = 0; !ended && n < 1_024; n++) {
        if (!p.write(chunk)) await Promise.race([d.drained(), d.done]);
        else await new Promise((r) => setImmediate(r));
      }
      const r = await d.done;
      outcomes.push(`${exitOf(r)} ${r.stdout.toString()}`);
    }
    expect(outcomes).toEqual(Array(5).fill('3 yyyyyyyyyy'));
  });

  it('ends a session whose pod is deleted under it with ENTRY_CONTAINER_GONE', async () => {
    const t = await backends.resolve({ app: 'bare', proc: 'doomed', instance: 'doomed' });
    const p = await t.open(spec({ cmd: ['sh', '-c', 'echo up; exec sleep 300'] }));
    const d = drive(p);
    await d.until((s) => s.includes('up'));
    expect((await k.api('DELETE', `/api/v1/namespaces/${ns}/pods/doomed`)).status).toBeLessThan(300);
    const end = await d.done;
    expect(exitOf(end)).toMatch(/^error ENTRY_CONTAINER_GONE: .*doomed stopped/);
  });

  it("gives the command's own exit status when its pod is deleted while it runs on through the grace period", async () => {
    const t = await backends.resolve({ app: 'bare', proc: 'lingering', instance: 'lingering' });
    const p = await t.open(spec({ cmd: ['sh', '-c', 'echo started; sleep 3; echo done; exit 130'] }));
    const d = drive(p);
    await d.until((s) => s.includes('started'));
    expect((await k.api('DELETE', `/api/v1/namespaces/${ns}/pods/lingering`)).status).toBeLessThan(300);
    const end = await d.done;
    expect(end.stdout.toString()).toBe('started\ndone\n');
    expect(exitOf(end)).toBe(130);
  });

  it('ends a command that BusyBox runs inside its own shell (an applet such as awk) when its client vanishes', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '1' });
    const tag = `applet-${randomBytes(4).toString('hex')}`;
    const s = spec({ cmd: ['awk', `BEGIN { tag = "${tag}"; while (1) {} }`] });
    const p = await t.open(s);
    drive(p);
    // Marked like any command of the session: that is how the reaper finds it.
    await eventually(async () => (await marked('web-1', `ENTRY_SESSION=${s.sessionId}`)).some((l) => l.includes(tag)), 'the awk applet to run with the mark', 15_000);
    await p.terminate();
    const left = await k.kubectl(['exec', '-n', ns, 'web-1', '-c', 'main', '--', 'sh', '-c', 'for d in /proc/[0-9]*; do tr "\\0" " " < $d/cmdline 2>/dev/null; echo; done', 'scan']);
    expect(left).not.toContain(tag);
  });

  it("leaves a command's stdin whole when a signal is sent to the session's processes (the stdin pump ignores it)", async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    // A watcher in the background says when the signal came; the reading side ignores it.
    const script = '( trap "echo got-usr1; exit 0" USR1; while :; do sleep 0.1; done ) & trap "" USR1; read -r first; echo "first:$first"; wc -c';
    const p = await t.open(spec({ cmd: ['sh', '-c', script] }));
    const d = drive(p);
    await d.writeAll(Buffer.from('one\n'));
    await d.until((x) => x.includes('first:one'));
    p.signal('USR1');
    await d.until((x) => x.includes('got-usr1'));
    await d.writeAll(Buffer.alloc(300_000, 0x61));
    p.endInput();
    const end = await d.done;
    expect(end.stdout.toString()).toMatch(/got-usr1\n\s*300000\n$/);
    expect(exitOf(end)).toBe(0);
  });

  it('streams the container log for /attach', async () => {
    const t = await backends.resolve({ app: 'multi', proc: 'worker', instance: '1' });
    const p = await t.attach();
    const d = drive(p);
    await d.until((s) => s.includes('hello from main'));
    await p.terminate();
  });

  it('passes a signal to the session\'s processes', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    const p = await t.open(spec({ cmd: ['sh', '-c', 'trap "echo got-int; exit 9" INT; echo ready; while :; do sleep 1; done'] }));
    const d = drive(p);
    await d.until((s) => s.includes('ready'));
    p.signal('INT');
    const end = await d.done;
    expect(end.stdout.toString()).toContain('got-int');
    expect(exitOf(end)).toBe(9);
  });

  it('passes a signal sent right after the open, before the command may have started', async () => {
    const t = await backends.resolve({ app: 'shop', proc: 'web', instance: '0' });
    const took: number[] = [];
    for (let i = 0; i < 2; i++) {
      const p = await t.open(spec({ cmd: ['sleep', '600'] }));
      const d = drive(p);
      const sent = Date.now();
      p.signal('KILL');
      expect(exitOf(await d.done), `run ${i}`).toBe(137);
      took.push(Date.now() - sent);
    }
    console.log(`kube-backend: a KILL sent right after the open ended the command in ${took.join(', ')} ms`);
    // The KILL's own scan explains the 137: the pod is not watched for a stop as well.
    for (const ms of took) expect(ms).toBeLessThan(POD_STOP_SETTLE_MS);
  }, 60_000);

  it('needs no more than get/list/watch on pods and get/create on pods/exec, and serves its own namespace when it may not list all', async () => {
    const execer = await k.createIdentity({ name: 'execer', namespace: ns, rules: EXEC_RULES });
    // No namespace given: every namespace is refused to it, so it serves its kubeconfig's own.
    const own = createKubernetesBackend({ kubeconfig: execer.kubeconfigPath, namespaces: [], log });
    const b = new Backends([own]);
    try {
      await b.start();
      expect(own.status()).toEqual({ 'entry-kube': true });
      expect(own.index.namespaces).toEqual([ns]);
      const r = await (await b.resolve({ app: 'shop', proc: 'web', instance: '1' })).open(spec({ cmd: ['sh', '-c', 'echo allowed; exit 2'] }));
      const end = await drive(r).done;
      expect(end.stdout.toString()).toBe('allowed\n');
      expect(exitOf(end)).toBe(2);
      // /attach reads the log, which it was not given: refused with the reason.
      await expect((await b.resolve({ app: 'multi', proc: 'worker', instance: '1' })).attach()).rejects.toMatchObject({ code: 'ENTRY_EXEC_FAILED', message: expect.stringContaining('pods/log') });
    } finally {
      b.stop();
      await execer.remove();
    }
  });

  it('says why when its identity may list pods but not watch them', async () => {
    const lister = await k.createIdentity({ name: 'lister', namespace: ns, rules: [{ resources: ['pods'], verbs: ['get', 'list'] }] });
    const blind = createKubernetesBackend({ kubeconfig: lister.kubeconfigPath, namespaces: [ns], log });
    const b = new Backends([blind]);
    try {
      await b.start();
      expect(blind.status()).toEqual({ 'entry-kube': false });
      await expect(b.resolve({ app: 'shop', proc: 'web', instance: '0' })).rejects.toMatchObject({ code: 'ENTRY_CLUSTER_UNAVAILABLE', message: expect.stringContaining(`may not watch pods in namespace ${ns}`) });
    } finally {
      b.stop();
      await lister.remove();
    }
  });

  it('refuses clearly when its identity may not exec, and keeps serving', async () => {
    const reader = await k.createIdentity({ name: 'reader', namespace: ns, rules: [{ resources: ['pods'], verbs: ['get', 'list', 'watch'] }] });
    const limited = createKubernetesBackend({ kubeconfig: reader.kubeconfigPath, namespaces: [ns], log });
    const both = new Backends([limited]);
    try {
      await both.start();
      expect(limited.status()).toEqual({ 'entry-kube': true });
      const t = await both.resolve({ app: 'shop', proc: 'web', instance: '0' });
      const err = await t.open(spec({ cmd: ['true'] })).then(
        () => undefined,
        (e: unknown) => e as EntryError,
      );
      expect(err).toMatchObject({ code: 'ENTRY_EXEC_FAILED', message: expect.stringContaining('may not exec in') });
      expect(err!.message).toContain('pods/exec');
      expect(err!.message).not.toContain(reader.token);
      expect((await both.resolve({ app: 'shop', proc: 'web', instance: '1' })).name).toBe('web-1');
      expect((await both.list()).length).toBeGreaterThan(0);
    } finally {
      both.stop();
      await reader.remove();
    }
  });

  it('answers at once when the apiserver cannot be reached, and recovers by itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entry-kb-'));
    // A port nothing listens on: connections are refused.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const relay = await apiserverRelay(k.apiserverUrl);
    const { cut } = relay;
    const listenRelay = () => relay.restore();
    const relayPort = relay.port;
    const config = (port: number, file: string) => kubeconfigVia(k, port, join(dir, file));
    const dead = createKubernetesBackend({ kubeconfig: config(closedPort, 'dead'), namespaces: [ns], log });
    const flaky = createKubernetesBackend({ kubeconfig: config(relayPort, 'flaky'), namespaces: [ns], log, timing: { backoffInitialMs: 50, backoffMaxMs: 200, pingIntervalMs: 5_000 } });
    const both = [new Backends([dead]), new Backends([flaky])] as const;
    try {
      const t0 = performance.now();
      await both[0].start();
      expect(performance.now() - t0).toBeLessThan(2_000);
      expect(dead.status()).toEqual({ 'entry-kube': false });
      const t1 = performance.now();
      await expect(both[0].resolve({ app: 'shop', proc: 'web', instance: '0' })).rejects.toMatchObject({
        code: 'ENTRY_CLUSTER_UNAVAILABLE',
        message: expect.stringMatching(/cluster entry-kube unreachable \(.*ECONNREFUSED/),
      });
      // At once, not after a connect or the watch's backoff: far under a second, even on a loaded machine.
      expect(performance.now() - t1).toBeLessThan(1_000);
      await expect(both[0].list()).rejects.toMatchObject({ code: 'ENTRY_CLUSTER_UNAVAILABLE' });

      await both[1].start();
      expect(flaky.status()).toEqual({ 'entry-kube': true });
      const resyncs = flaky.index.resyncs;
      const tCut = performance.now();
      await cut();
      for (let i = 0; i < 150 && flaky.status()['entry-kube']; i++) await sleep(20);
      expect(flaky.status()).toEqual({ 'entry-kube': false });
      const downAfter = performance.now() - tCut;
      // Noticed by the watch itself, not by the next ping.
      expect(downAfter).toBeLessThan(2_500);
      const t2 = performance.now();
      await expect(both[1].resolve({ app: 'shop', proc: 'web', instance: '0' })).rejects.toMatchObject({ code: 'ENTRY_CLUSTER_UNAVAILABLE' });
      expect(performance.now() - t2).toBeLessThan(1_000);
      const tBack = performance.now();
      await listenRelay();
      for (let i = 0; i < 250 && !flaky.status()['entry-kube']; i++) await sleep(20);
      expect(flaky.status()).toEqual({ 'entry-kube': true });
      console.log(`kube-backend: apiserver cut: down after ${downAfter.toFixed(0)} ms; back: up after ${(performance.now() - tBack).toFixed(0)} ms`);
      expect(flaky.index.resyncs).toBeGreaterThan(resyncs);
      expect((await both[1].resolve({ app: 'shop', proc: 'web', instance: '0' })).name).toBe('web-0');
    } finally {
      for (const b of both) b.stop();
      await cut().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("ends a session's processes once the apiserver that cut its stream answers again", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entry-kb-'));
    const relay = await apiserverRelay(k.apiserverUrl);
    const flaky = createKubernetesBackend({ kubeconfig: kubeconfigVia(k, relay.port, join(dir, 'flaky')), namespaces: [ns], log, timing: { backoffInitialMs: 50, backoffMaxMs: 200 } });
    const b = new Backends([flaky]);
    try {
      await b.start();
      const t = await b.resolve({ app: 'shop', proc: 'web', instance: '1' });
      const s = spec({ cmd: ['sh', '-c', 'echo started; exec sleep 306'], terminateGraceMs: 500 });
      const mark = `ENTRY_SESSION=${s.sessionId}`;
      const p = await t.open(s);
      const d = drive(p);
      await d.until((x) => x.includes('started'));
      await relay.cut();
      expect((await d.done).result).toMatchObject({ error: { code: 'ENTRY_STREAM_LOST' } });
      // The relay ends the process side: the cluster cannot be asked now, and the session's end
      // is not held up by that.
      await expect(p.terminate()).rejects.toMatchObject({ code: 'ENTRY_CLUSTER_UNAVAILABLE' });
      expect((await marked('web-1', mark)).some((l) => l.includes('sleep 306'))).toBe(true);
      await relay.restore();
      const waitedMs = await eventually(async () => (await marked('web-1', mark)).length === 0, 'the processes to be ended', 30_000);
      console.log(`kube-backend: processes ended ${waitedMs} ms after the apiserver came back`);
    } finally {
      b.stop();
      await relay.cut().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('collects a scan that outlasts several pings of its socket: the kubelet answers them', async () => {
    const client = KubeClient.load({ kubeconfig: k.kubeconfigPath });
    // A 6 s time: a ping each 2 s, so `sleep 5` sees two of them answered (or is failed as silent).
    const started = Date.now();
    const r = await execCollect(client, { namespace: ns, pod: 'multi', container: 'main' }, ['sh', '-c', 'sleep 5; echo still-here'], 6_000);
    expect(r.stdout).toBe('still-here\n');
    expect(Date.now() - started).toBeGreaterThanOrEqual(5_000);
  }, 30_000);

  it('fails at start with one clear line for a bad kubeconfig or context', () => {
    expect(() => createKubernetesBackend({ kubeconfig: '/no/such/kubeconfig', namespaces: [], log })).toThrow(ConfigError);
    expect(() => createKubernetesBackend({ kubeconfig: '/no/such/kubeconfig', namespaces: [], log })).toThrow(/--kubeconfig.*no such file/);
    expect(() => createKubernetesBackend({ kubeconfig: k.kubeconfigPath, context: 'nope', namespaces: [], log })).toThrow(/--kube-context: no context "nope"/);
  });
});

function readKubeconfig(k: KubeCluster): string {
  return readFileSync(k.kubeconfigPath, 'utf8');
}

/** The admin kubeconfig, written to `file` with the apiserver reached on a loopback `port`. */
function kubeconfigVia(k: KubeCluster, port: number, file: string): string {
  writeFileSync(file, readKubeconfig(k).replace(/server: \S+/, `server: https://127.0.0.1:${port}`));
  return file;
}

/** A TCP relay to the real apiserver that can be cut (every connection reset, the port closed) and restored on the same port. */
async function apiserverRelay(apiserverUrl: string): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let relay: Server | undefined;
  const api = new URL(apiserverUrl);
  const listen = (port: number) =>
    new Promise<number>((resolve) => {
      relay = createServer((c) => {
        const up = connect(Number(api.port), api.hostname);
        sockets.add(c).add(up);
        c.pipe(up).pipe(c);
        const drop = () => (c.destroy(), up.destroy());
        c.on('error', drop).on('close', drop);
        up.on('error', drop).on('close', drop);
      });
      relay.listen(port, '127.0.0.1', () => resolve((relay!.address() as { port: number }).port));
    });
  const port = await listen(0);
  return {
    port,
    cut: async () => {
      const closed = new Promise((r) => relay!.close(r));
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closed;
    },
    restore: async () => {
      await listen(port);
    },
  };
}
