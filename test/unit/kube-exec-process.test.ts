import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { ExecSpec } from '../../broker/backend/backend.js';
import { openCleanedUp } from '../../broker/backend/open-clean-up.js';
import { Limiter } from '../../broker/backend/pacing.js';
import { ScanBatcher } from '../../broker/backend/scan-batcher.js';
import type { EntryError } from '../../broker/errors.js';
import { KubeExecProcess, PUMP_MESSAGE_GAP_MS } from '../../broker/kubernetes/exec-process.js';
import { COLLECT_MAX_BYTES, execCollect, type ExecTarget } from '../../broker/kubernetes/exec-socket.js';
import { KubeClient } from '../../broker/kubernetes/kube-client.js';
import { POD_STOP_SETTLE_MS } from '../../broker/kubernetes/pod-fate.js';
import { PodReaper } from '../../broker/kubernetes/pod-reaper.js';
import { createLogger } from '../../broker/log.js';
import { writeKubeconfig } from '../helpers/kubeconfig.js';

/**
 * A stand-in apiserver for the exec channel protocol: it runs the requested command on this
 * machine (no TTY) and speaks v4 or v5 as configured, the way the kubelet does: stdout and
 * stderr on channels 1 and 2, the metav1.Status on 3, then close. Lets the v5 stdin close be
 * tested although the real cluster here (1.20) only offers v4.
 */
type Child = ChildProcessByStdio<Writable, Readable, Readable>;

/** A child process started once `when` resolves, behind a stand-in with the streams the fake uses at once. */
function spawnLater(when: Promise<void> | undefined, command: string[]): Child {
  if (!when) return spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const stand = Object.assign(new EventEmitter(), { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() });
  void when.then(() => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    stand.stdin.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    child.stdout.pipe(stand.stdout);
    child.stderr.pipe(stand.stderr);
    child.on('exit', (code, signal) => stand.emit('exit', code, signal));
  });
  return stand as unknown as Child;
}

/** PIDs of this machine's processes whose environment carries `mark`. */
function localMarked(mark: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(mark)) pids.push(Number(name));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

function fakeApiserver(protocols: string[]) {
  let scanDone!: () => void;
  const scanned = new Promise<void>((r) => (scanDone = r));
  const seen: Array<{ protocol: string; command: string[]; token: string | undefined; closed: boolean; resizes: string[]; stdinMessages: number; order: string[]; onPing: (() => void) | undefined; unpause: () => void; child: Child }> = [];
  const server: Server = createServer((req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false,
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname.includes('/pods/forbidden/')) {
      const body = JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods "forbidden" is forbidden: User "system:serviceaccount:x:reader" cannot create resource "pods/exec"' });
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    // Pod `silent` takes the upgrade and never answers it (a kubelet stuck on its runtime); its
    // reaper's scans are answered.
    if (url.pathname.includes('/pods/silent/') && url.searchParams.getAll('command')[3] !== 'entry-reaper') {
      setTimeout(() => socket.destroy(), 5_000).unref();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const command = url.searchParams.getAll('command');
      const entry = { protocol: ws.protocol, command, token: req.headers.authorization, closed: false, resizes: [] as string[], stdinMessages: 0, order: [] as string[], onPing: undefined as (() => void) | undefined, unpause: () => ws.resume(), child: undefined as unknown as Child };
      seen.push(entry);
      // Answered by ws itself before this runs: the pong is on its way.
      ws.on('ping', () => entry.onPing?.());
      // Pod `slow` reads nothing until the test says so: a kubelet behind on its stream.
      if (url.pathname.includes('/pods/slow/')) ws.pause();
      // Pod `lingering` keeps the socket open after the status; `split` also sends the status in two messages.
      const split = url.pathname.includes('/pods/split/');
      const linger = split || url.pathname.includes('/pods/lingering/');
      // Pod `late` starts the command only once a reaper's scan has come and gone: a loaded
      // node's kubelet, slower than the session's end.
      const scan = command[3] === 'entry-reaper';
      const child = spawnLater(url.pathname.includes('/pods/late/') && !scan ? scanned : undefined, command);
      entry.child = child;
      if (scan) child.on('exit', () => scanDone());
      child.stdin.on('error', () => undefined);
      const send = (ch: number, d: Buffer) => ws.send(Buffer.concat([Buffer.from([ch]), d]));
      // The kubelet sends an empty first message on each output channel.
      send(1, Buffer.alloc(0));
      send(2, Buffer.alloc(0));
      ws.on('message', (m: Buffer) => {
        if (m[0] === 0) {
          entry.stdinMessages++;
          entry.order.push(`stdin ${m.subarray(1).toString('latin1')}`);
          child.stdin.write(m.subarray(1));
        } else if (m[0] === 4) {
          entry.resizes.push(m.subarray(1).toString());
          entry.order.push(`resize ${m.subarray(1).toString()}`);
        }
        else if (m[0] === 255 && ws.protocol === 'v5.channel.k8s.io') child.stdin.end();
      });
      ws.on('close', () => {
        entry.closed = true;
        child.stdin.destroy();
      });
      let open = 2;
      const exited = new Promise<number>((r) => child.on('exit', (code, signal) => r(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15))));
      const ended = () => {
        if (--open > 0) return;
        void exited.then((code) => {
          const status =
            code === 0
              ? { metadata: {}, status: 'Success' }
              : { metadata: {}, status: 'Failure', message: `command terminated with non-zero exit code: ${code}`, reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(code) }] } };
          const bytes = Buffer.from(JSON.stringify(status));
          if (split) {
            send(3, bytes.subarray(0, 9));
            send(3, bytes.subarray(9));
          } else send(3, bytes);
          if (!linger) ws.close(1000);
        });
      };
      child.stdout.on('data', (d: Buffer) => send(1, d)).on('end', ended);
      child.stderr.on('data', (d: Buffer) => send(2, d)).on('end', ended);
    });
  });
  return { server, seen };
}

function drive(p: KubeExecProcess) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return new Promise<{ stdout: Buffer; stderr: string; result: { exitCode: number } | { error: EntryError } }>((resolve) =>
    p.start({
      output: (s, d) => (s === 'stdout' ? out : err).push(Buffer.from(d)),
      drain: () => undefined,
      end: (result) => resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(), result }),
    }),
  );
}

const until = async (check: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

const spec = (over: Partial<ExecSpec>): ExecSpec => ({
  sessionId: `unit-${randomBytes(4).toString('hex')}`,
  cmd: ['true'],
  tty: false,
  env: [],
  user: '',
  workdir: '',
  size: undefined,
  terminateGraceMs: 500,
  openTimeoutMs: 30_000,
  container: '',
  ...over,
});

describe.each([
  ['v5.channel.k8s.io', ['v5.channel.k8s.io', 'v4.channel.k8s.io']],
  ['v4.channel.k8s.io', ['v4.channel.k8s.io']],
])('a pods/exec process side on a %s server', (protocol, offered) => {
  let fake: ReturnType<typeof fakeApiserver>;
  let client: KubeClient;
  let dir: string;
  const token = `t-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    fake = fakeApiserver(offered);
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
    const port = (fake.server.address() as { port: number }).port;
    dir = mkdtempSync(join(tmpdir(), 'entry-kube-unit-'));
    const file = join(dir, 'kubeconfig');
    writeKubeconfig(file, { cluster: { name: 'fake', server: `http://127.0.0.1:${port}`, insecure: true }, token, contexts: [{ name: 'c', namespace: 'ns' }] });
    client = KubeClient.load({ kubeconfig: file });
  });

  afterAll(() => {
    fake.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const openOn = (c: KubeClient, s: ExecSpec, pod: string) => KubeExecProcess.open(c, new PodReaper(c, createLogger('silent')), { namespace: 'ns', pod, container: 'main', spec: s, podFate: async () => 'running' as const });
  const open = (s: ExecSpec, pod = 'p') => openOn(client, s, pod);
  // A client's first exec goes through the stdin pump: only then is a v5 server known to close stdin itself.
  const openPumped = (s: ExecSpec) => openOn(KubeClient.load({ kubeconfig: join(dir, 'kubeconfig') }), s, 'p');

  it('gives the exit code as soon as the status arrives, and closes a socket the server keeps open', async () => {
    const p = await open(spec({ cmd: ['sh', '-c', 'echo out; exit 3'] }), 'lingering');
    const done = await drive(p);
    expect(done.result).toEqual({ exitCode: 3 });
    expect(done.stdout.toString()).toBe('out\n');
    await until(() => fake.seen.at(-1)!.closed);
  });

  it('waits for the rest of a status split over two messages', async () => {
    const p = await open(spec({ cmd: ['sh', '-c', 'exit 5'] }), 'split');
    expect((await drive(p)).result).toEqual({ exitCode: 5 });
    await until(() => fake.seen.at(-1)!.closed);
  });

  it('negotiates the protocol and signs the upgrade with the kubeconfig token', async () => {
    const p = await open(spec({ cmd: ['true'] }));
    expect(p.protocol).toBe(protocol);
    expect((await drive(p)).result).toEqual({ exitCode: 0 });
    expect(fake.seen.at(-1)!.token).toBe(`Bearer ${token}`);
  });

  it('passes stdin and its end, keeps stderr apart, and reports the exit code', async () => {
    const data = randomBytes(1024 * 1024 + 1);
    const p = await open(spec({ cmd: ['sh', '-c', 'cat; echo err >&2; exit 3'] }));
    const done = drive(p);
    for (let i = 0; i < data.length; i += 50_000) p.write(data.subarray(i, i + 50_000));
    p.endInput();
    const r = await done;
    expect(r.result).toEqual({ exitCode: 3 });
    expect(Buffer.compare(r.stdout, data)).toBe(0);
    expect(r.stderr).toBe('err\n');
    // On v5 the stdin pump is left out once the server is known to close stdin itself.
    // Wrapper arguments: $0, workdir, size, the environment up to a lone '=', then the pump.
    const command = fake.seen.at(-1)!.command;
    expect(command[command.indexOf('=', 6) + 1]).toBe(protocol === 'v5.channel.k8s.io' ? '0' : '1');
  });

  it('joins one-byte stdin messages written together into a few for the pump, byte-exact, its end after the last byte', async () => {
    // A client of the original protocol pasting: a frame a byte, many taken from one read.
    const data = randomBytes(1_000);
    const p = await openPumped(spec({ cmd: ['cat'] }));
    const done = drive(p);
    const server = fake.seen.at(-1)!;
    const started = performance.now();
    for (const b of data) p.write(Buffer.from([b]));
    p.endInput();
    const r = await done;
    console.log(`kube stdin (${protocol}, pump): ${data.length} one-byte writes in one turn went as ${server.stdinMessages} messages, ${(performance.now() - started).toFixed(0)} ms to the exit`);
    expect(r.result).toEqual({ exitCode: 0 });
    expect(Buffer.compare(r.stdout, data)).toBe(0);
    // The first byte, the rest joined, the end, the answer to the command's end (pump-end.ts):
    // one dd a message, where there was one a byte.
    expect(server.stdinMessages).toBeLessThanOrEqual(4);
  }, 30_000);

  it('sends a stream of one-byte writes through the pump a message a gap, not a message a write', async () => {
    // od prints nothing until its input ends: output would be an answer, sent on at once.
    const data = randomBytes(500);
    const p = await openPumped(spec({ cmd: ['od', '-An', '-v', '-tx1'] }));
    const done = drive(p);
    const server = fake.seen.at(-1)!;
    const started = performance.now();
    for (const b of data) {
      p.write(Buffer.from([b]));
      await new Promise((r) => setTimeout(r, 1));
    }
    const writing = performance.now() - started;
    p.endInput();
    const r = await done;
    console.log(`kube stdin (${protocol}, pump): ${data.length} one-byte writes, 1 ms apart over ${writing.toFixed(0)} ms, went as ${server.stdinMessages} messages, ${(performance.now() - started).toFixed(0)} ms to the exit`);
    expect(r.result).toEqual({ exitCode: 0 });
    expect(r.stdout.toString().replace(/\s+/g, '')).toBe(data.toString('hex'));
    // A message when the gap has passed, the end, and the answer to the command's end.
    expect(server.stdinMessages).toBeLessThanOrEqual(Math.ceil(writing / PUMP_MESSAGE_GAP_MS) + 3);
    expect(server.stdinMessages).toBeLessThan(data.length / 4);
  }, 30_000);

  it("ends with the status the pump's end mark told when the command left a process holding its stdin unread", async () => {
    // The pump writes into a pipe only the leftover holds: it, and the exec, would last as long.
    const p = await openPumped(spec({ cmd: ['sh', '-c', 'exec 5<&0; sleep 8 <&5 5<&- & exec 5<&-; head -c 3 >/dev/null; echo gone >&2; exit 7'] }));
    const done = drive(p);
    let ended = false;
    void done.then(() => (ended = true));
    const started = performance.now();
    for (let n = 0; !ended && n < 2_000; n++) {
      p.write(Buffer.alloc(16 * 1024, 1));
      await new Promise((r) => setTimeout(r, 5));
    }
    const r = await done;
    const ms = performance.now() - started;
    await p.terminate();
    expect(r.result).toEqual({ exitCode: 7 });
    expect(r.stderr).toBe('gone\n');
    // PUMP_END_WAIT_MS (3 s) after the end, not the leftover's 8 s.
    expect(ms).toBeLessThan(6_500);
  }, 30_000);

  it("ends a command's own SIGKILL at once through the pump: the wrapper that told it lived on, so its container did not stop", async () => {
    const p = await openPumped(spec({ cmd: ['sh', '-c', 'kill -9 $$'] }));
    const started = performance.now();
    const r = await drive(p);
    expect(r.result).toEqual({ exitCode: 137 });
    expect(performance.now() - started).toBeLessThan(POD_STOP_SETTLE_MS);
  });

  // Only where the server can close stdin (v5): the command runs without the pump's wrapper.
  if (protocol === 'v5.channel.k8s.io') {
    it('watches the pod for a SIGKILL that no wrapper outlived (no pump) before giving 137', async () => {
      await drive(await open(spec({ cmd: ['true'] })));
      const p = await open(spec({ cmd: ['sh', '-c', 'kill -9 $$'] }));
      const started = performance.now();
      expect((await drive(p)).result).toEqual({ exitCode: 137 });
      expect(performance.now() - started).toBeGreaterThanOrEqual(POD_STOP_SETTLE_MS - 50);
    });
  }

  it('is byte-exact through the stdin path', async () => {
    const data = randomBytes(300_001);
    const p = await open(spec({ cmd: ['od', '-An', '-v', '-tx1'] }));
    const done = drive(p);
    p.write(data);
    p.endInput();
    const r = await done;
    expect(r.stdout.toString().replace(/\s+/g, '')).toBe(data.toString('hex'));
  });

  it('delivers a flood of SIGNAL messages one pods/exec at a time, a waiting signal absorbing its repeats', async () => {
    const calls: string[] = [];
    const inFlight: Array<() => void> = [];
    const reaper = {
      signal: (_t: unknown, _session: string, sig: string) => {
        calls.push(sig);
        return new Promise<number>((r) => inFlight.push(() => r(1)));
      },
      terminate: async () => undefined,
    } as unknown as PodReaper;
    const p = await KubeExecProcess.open(client, reaper, { namespace: 'ns', pod: 'p', container: 'main', spec: spec({ cmd: ['cat'] }), podFate: async () => 'running' as const });
    // The command runs until its input ends, after the last delivery: an end sooner would
    // rightly drop the signals still waiting.
    const done = drive(p);
    for (let i = 0; i < 1_000; i++) {
      void p.signal('INT');
      void p.signal('SIGTERM');
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual(['INT']);
    while (inFlight.length > 0) {
      inFlight.shift()!();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(calls).toEqual(['INT', 'TERM', 'INT']);
    p.endInput();
    expect((await done).result).toEqual({ exitCode: 0 });
  });

  it("ends the session's processes once however often it is asked, and tells each asker the same failure", async () => {
    let calls = 0;
    const reaper = {
      signal: async () => 0,
      terminate: async () => {
        calls++;
        throw new Error('no /bin/sh in the image');
      },
    } as unknown as PodReaper;
    const p = await KubeExecProcess.open(client, reaper, { namespace: 'ns', pod: 'p', container: 'main', spec: spec({ cmd: ['cat'] }), podFate: async () => 'running' as const });
    p.start({ output: () => undefined, drain: () => undefined, end: () => undefined });
    const results = await Promise.allSettled([p.terminate(), p.terminate()]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['no /bin/sh in the image', 'no /bin/sh in the image']);
    expect(calls).toBe(1);
  });

  it('ends a command the kubelet starts only after its session ended, looking again a moment later', async () => {
    const s = spec({ cmd: ['sleep', '1043'] });
    const mark = `ENTRY_SESSION=${s.sessionId}`;
    const p = await open(s, 'late');
    const server = fake.seen.at(-1)!;
    let exited = false;
    server.child.once('exit', () => (exited = true));
    p.start({ output: () => undefined, drain: () => undefined, end: () => undefined });
    try {
      await p.terminate();
      // Started after the first look found nothing: ended by the second, not left running.
      await until(() => exited, 1_000);
      expect(localMarked(mark)).toEqual([]);
    } finally {
      for (const pid of localMarked(mark)) process.kill(pid, 'SIGKILL');
    }
  }, 15_000);

  it('sends keystrokes waiting to be joined before a resize that came after them', async () => {
    const p = await open(spec({ cmd: ['dd', 'bs=1', 'count=5', 'status=none'], tty: true }));
    const out: Buffer[] = [];
    let ended!: (result: unknown) => void;
    const end = new Promise((r) => (ended = r));
    p.start({ output: (_s, d) => out.push(Buffer.from(d)), drain: () => undefined, end: (result) => ended(result) });
    const server = fake.seen.at(-1)!;
    // Running (its output seen), so a resize is not one sent before the process starts.
    p.write(Buffer.from('a'));
    await until(() => Buffer.concat(out).toString() === 'a');
    // `b` goes at once; `c` and `d` wait behind it, to be joined; then the size.
    p.write(Buffer.from('b'));
    p.write(Buffer.from('c'));
    p.write(Buffer.from('d'));
    p.resize(100, 30);
    p.write(Buffer.from('e'));
    expect(await end).toEqual({ exitCode: 0 });
    expect(Buffer.concat(out).toString()).toBe('abcde');
    expect(server.order).toEqual(['stdin a', 'stdin b', 'stdin cd', `resize ${JSON.stringify({ Width: 100, Height: 30 })}`, 'stdin e']);
  }, 30_000);

  it('bounds what a resize flood queues while the apiserver reads slowly, and sends the last size', async () => {
    // Ends on a line `end`, written only once the last size has arrived: a command that ended
    // sooner could have its status reach the process side while that size still waited, and a
    // size after the end is rightly never sent.
    const p = await open(spec({ cmd: ['grep', '-q', '-x', 'end'], tty: true, size: { cols: 80, rows: 24 } }), 'slow');
    const done = drive(p);
    const server = fake.seen.at(-1)!;
    // Input the server does not read yet fills the queue towards it; then a flood of resizes.
    while (p.write(Buffer.alloc(256 * 1024, 0x61))) await new Promise((r) => setImmediate(r));
    // Past what the stdin window and RESIZE_WAIT_BYTES leave room for (about 37 bytes each).
    for (let i = 0; i < 100_000; i++) p.resize(80 + (i % 2), 24);
    p.resize(132, 43);
    server.unpause();
    await until(() => server.resizes.at(-1) === JSON.stringify({ Width: 132, Height: 43 }), 15_000);
    // What was queued stayed under the bound (2 MiB with the stdin before it), not all 100,001.
    expect(server.resizes.length).toBeLessThan((2 * 1024 * 1024) / 37);
    p.write(Buffer.from('\nend\n'));
    expect((await done).result).toEqual({ exitCode: 0 });
  }, 30_000);

  it('takes one-byte stdin messages up to the byte bound while the apiserver reads none, holding them joined, and loses none', async () => {
    // A TTY exec takes stdin as it comes (no pump); the fake runs the command without one, and
    // `head` ends it once the bytes are in.
    const total = 16 * 1024 * 1024;
    const p = await open(spec({ cmd: ['sh', '-c', `head -c ${total} | wc -c`], tty: true }), 'slow');
    const done = drive(p);
    const server = fake.seen.at(-1)!;
    let accepted = 0;
    const byte = Buffer.from('x');
    while (accepted < total) {
      accepted++;
      if (!p.write(byte)) break;
    }
    // Stopped: what the loopback socket's buffers take (a few MB here), and the 1 MiB bound.
    expect(accepted).toBeLessThan(total);
    server.unpause();
    p.write(Buffer.alloc(total - accepted, 0x79));
    const { stdout, result } = await done;
    expect(result).toEqual({ exitCode: 0 });
    expect(stdout.toString().trim()).toBe(String(total));
    // Held joined, in messages of up to 64 KiB: not a queue entry (and its objects) a byte.
    expect(server.stdinMessages).toBeLessThan(accepted / 16_384);
  }, 30_000);

  it('passes on output that starts like the runtime\'s failure as it comes, byte-exact, with its exit code', async () => {
    // Like `grep -h "OCI runtime exec failed" big.log`: 5 MB of such lines, then a command that waits.
    const line = 'OCI runtime exec failed: exec failed: seen in a log\n';
    const big = line.repeat(Math.ceil((5 * 1024 * 1024) / line.length));
    const p = await open(spec({ cmd: ['sh', '-c', 'yes "$1" | head -c "$2"; cat >/dev/null; exit 3', 'sh', line.slice(0, -1), String(big.length)] }));
    let got = 0;
    const out: Buffer[] = [];
    const ended = new Promise<{ exitCode: number } | { error: EntryError }>((resolve) =>
      p.start({ output: (_s, d) => (out.push(Buffer.from(d)), (got += d.byteLength)), drain: () => undefined, end: resolve }),
    );
    // All of it reaches the client while the command still runs.
    await until(() => got === big.length);
    p.endInput();
    expect(await ended).toEqual({ exitCode: 3 });
    expect(Buffer.concat(out).toString()).toBe(big);
  });

  it('passes on a first line longer than the runtime\'s failure could be, before the command ends', async () => {
    const p = await open(spec({ cmd: ['sh', '-c', 'printf "OCI runtime exec failed"; head -c 10000 /dev/zero; cat >/dev/null'] }));
    let got = 0;
    const ended = new Promise((resolve) => p.start({ output: (_s, d) => (got += d.byteLength), drain: () => undefined, end: resolve }));
    await until(() => got === 23 + 10_000);
    p.endInput();
    expect(await ended).toEqual({ exitCode: 0 });
  });

  it('passes on one such line from a command that succeeded', async () => {
    const p = await open(spec({ cmd: ['sh', '-c', 'echo "OCI runtime exec failed: quoted"'] }));
    const r = await drive(p);
    expect(r.result).toEqual({ exitCode: 0 });
    expect(r.stdout.toString()).toBe('OCI runtime exec failed: quoted\n');
  });

  it('still tells the runtime\'s own failure (its one line, exit 126) as an image without /bin/sh', async () => {
    const text = 'OCI runtime exec failed: exec failed: container_linux.go:367: starting container process caused: exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown';
    const p = await open(spec({ cmd: ['sh', '-c', 'printf "%s\\r\\n" "$1"; exit 126', 'sh', text] }));
    const r = await drive(p);
    expect(r.stdout.length).toBe(0);
    expect(r.result).toMatchObject({ error: { code: 'ENTRY_EXEC_FAILED', message: expect.stringContaining('has no /bin/sh') } });
  });

  it('collects a short command\'s answer, and stops one that prints more than such a command ever does', async () => {
    const t = { namespace: 'ns', pod: 'p', container: 'main' };
    expect(await execCollect(client, t, ['sh', '-c', 'echo 3; echo note >&2'], 5_000)).toEqual({ stdout: '3\n', stderr: 'note\n', status: { exitCode: 0 } });
    const t0 = Date.now();
    // Stopped at the limit, not at the end of its (long) time allowed.
    const err = await execCollect(client, t, ['sh', '-c', 'head -c 10000000 /dev/zero'], 30_000).then(
      () => undefined,
      (e: unknown) => e as EntryError,
    );
    expect(err).toMatchObject({ code: 'ENTRY_EXEC_FAILED', message: expect.stringContaining(`printed more than ${COLLECT_MAX_BYTES} bytes`) });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('marks a collected command that ran out of its time as a scan that overran, for the batcher to try in halves; not one whose upgrade went unanswered, nor one whose link went silent', async () => {
    const scans: Array<{ pod: string; marks: number }> = [];
    const batcher = new ScanBatcher<ExecTarget>({
      limiter: new Limiter(8),
      maxMarks: 4,
      overdueMs: 10_000,
      keyOf: (t) => t.pod,
      // A scan of two marks outlasts its time; one of one mark answers at once.
      run: async (t, _signal, marks) => {
        scans.push({ pod: t.pod, marks: marks.length });
        const r = await execCollect(client, t, ['sh', '-c', marks.length > 1 ? 'sleep 2' : 'echo 1'], 300);
        return [Number(r.stdout)];
      },
    });
    const at = (pod: string): ExecTarget => ({ namespace: 'ns', pod, container: 'main' });
    expect(await Promise.all([batcher.signal(at('p'), 'ENTRY_SESSION=a', '0'), batcher.signal(at('p'), 'ENTRY_SESSION=b', '0')])).toEqual([1, 1]);
    expect(scans).toEqual([{ pod: 'p', marks: 2 }, { pod: 'p', marks: 1 }, { pod: 'p', marks: 1 }]);
    // An apiserver that never answers the upgrade is no faster for fewer marks.
    scans.length = 0;
    const unanswered = await Promise.allSettled([batcher.signal(at('silent'), 'ENTRY_SESSION=a', '0'), batcher.signal(at('silent'), 'ENTRY_SESSION=b', '0')]);
    expect(unanswered.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(scans).toEqual([{ pod: 'silent', marks: 2 }]);
    // Nor is one whose link went silent after the upgrade (`slow` reads nothing, pings included).
    scans.length = 0;
    const silenced = await Promise.allSettled([batcher.signal(at('slow'), 'ENTRY_SESSION=a', '0'), batcher.signal(at('slow'), 'ENTRY_SESSION=b', '0')]);
    expect(silenced.map((r) => (r.status === 'rejected' ? String(r.reason) : 'fulfilled'))).toEqual(Array(2).fill(expect.stringMatching(/stopped answering: a ping had no answer within 100 ms/)));
    expect(scans).toEqual([{ pod: 'slow', marks: 2 }]);
  });

  it('counts a pong that waited behind a busy event loop: the scan is collected, not failed as silent', async () => {
    const n = fake.seen.length;
    // A ping each 2 s.
    const collecting = execCollect(client, { namespace: 'ns', pod: 'p', container: 'main' }, ['sh', '-c', 'sleep 3; echo 1'], 6_000);
    await until(() => fake.seen.length > n);
    const server = fake.seen.at(-1)!;
    // The first ping answered, the loop is held past the next ping's time before the pong is read.
    server.onPing = () => {
      server.onPing = undefined;
      setImmediate(() => {
        const until = Date.now() + 2_400;
        while (Date.now() < until);
      });
    };
    expect((await collecting).stdout).toBe('1\n');
  }, 15_000);

  it('gives up on an upgrade the apiserver never answers after the open timeout, and says so', async () => {
    const started = Date.now();
    const s = spec({ openTimeoutMs: 300 });
    const err = await open(s, 'silent').catch((e: unknown) => e as EntryError);
    expect(err).toMatchObject({ code: 'ENTRY_CLUSTER_UNAVAILABLE', message: 'kubernetes cluster unreachable: cluster fake: exec in ns/silent: no answer within 300 ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(3_000);
    // The request went out: the kubelet may have started the command, and its session is looked for.
    expect(await openCleanedUp(err)).toBe(true);
    expect(fake.seen.some((e) => e.command[3] === 'entry-reaper' && e.command.some((a) => a.includes(s.sessionId)))).toBe(true);
  });

  it('refuses a user, and tells an identity without pods/exec why', async () => {
    await expect(open(spec({ user: 'root' }))).rejects.toMatchObject({ code: 'ENTRY_BAD_REQUEST' });
    const err = await open(spec({}), 'forbidden').catch((e: unknown) => e as EntryError);
    expect(err).toMatchObject({ code: 'ENTRY_EXEC_FAILED', message: expect.stringContaining('may not exec in ns/forbidden') });
  });
});
