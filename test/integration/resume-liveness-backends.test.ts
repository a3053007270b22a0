import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, spawn as spawnRemote } from '../../client/api.js';
import { BACKENDS, flagsOf, type TargetHandle } from '../helpers/backends.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { CLI } from '../helpers/cli.js';
import { uniqueApp } from '../helpers/containers.js';
import { mb, timedEcho } from '../helpers/hardening.js';
import { stoppedReader } from '../helpers/stopped-reader.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { TmuxTerminal } from '../helpers/tmux.js';

/**
 * What keeps a session alive, the same on every backend, end to end through a broker process,
 * the CLI and the TypeScript API: a link reset and kept down for 2 s is resumed (each line once,
 * in order, the command's exit status; input once; an interactive shell keeps its variables);
 * a link down while tens of MB are printed, and a client that stops reading meanwhile, hold the
 * process back and the broker's memory bounded; a paused reader is not taken for dead, and gets
 * every byte once it reads again. Only the backend level of this is in kube-backend.test.ts.
 */

const LINES = 24;
/** A line each 0.25 s: 6 s, the cut (at line 8, for 2 s) falls in the middle. */
const SCRIPT = `for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 0.25; done; exit 7`;
const expectedLines = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join('');
const CUT_MS = 2_000;

/** Short liveness bounds, so that a pause of a few seconds outlasts them many times over. */
const PING_INTERVAL_MS = 200;
const PEER_TIMEOUT_MS = 3_000;
/** Twice the peer timeout, 30 pings unanswered. */
const PAUSE_MS = 2 * PEER_TIMEOUT_MS;
/** `seq 1 8000000` is 62.9 MB (60 MiB): twice the memory bound, far more than every buffer on the way holds. */
const SEQ = 8_000_000;
/** As hardening-stall: the 1 MiB a session may queue, and room for the GC's own swings. */
const RSS_LIMIT = 32 * 1024 * 1024;

/** `seq 1 2000000` (14.9 MB), for a run that crosses cuts. */
const SEQ_SHORT = 2_000_000;
/** `seq 1 1000000` on a terminal (8.9 MB with its CRs): a pty gives under 1 MB/s on Docker. */
const SEQ_TTY = 1_000_000;
/** Long enough for a fast command to fill every buffer on the way many times over. */
const LONG_CUT_MS = 4_000;
/** Input sent across a cut: 8 MiB, eight times the 1 MiB a client keeps unacknowledged. */
const INPUT_BYTES = 8 * 1024 * 1024;

/** MD5 and length of `seq 1 n`, lines ending in `eol`. */
function seqOf(n: number, eol = '\n'): { md5: string; bytes: number } {
  const hash = createHash('md5');
  let bytes = 0;
  const step = 100_000;
  for (let from = 1; from <= n; from += step) {
    let s = '';
    for (let i = from; i < from + step && i <= n; i++) s += `${i}${eol}`;
    hash.update(s);
    bytes += s.length;
  }
  return { md5: hash.digest('hex'), bytes };
}
const seqOutput = seqOf(SEQ);

describe.each(BACKENDS.map((make) => make()))('a session outlives a network blip and a paused reader ($kind)', (backend) => {
  const app = uniqueApp('rl');
  const target = { app, proc: 'web', instance: 1 };
  let handle: TargetHandle;
  let broker: BrokerProcess;
  let proxy: TcpProxy;
  let token = '';
  let env: Record<string, string>;

  beforeAll(async () => {
    handle = await backend.target(app, 'web', 1);
    broker = await BrokerProcess.start({ flags: [...flagsOf(backend.settings()), '--ping-interval', String(PING_INTERVAL_MS), '--peer-timeout', String(PEER_TIMEOUT_MS)] });
    proxy = new TcpProxy(broker.url);
    await proxy.start();
    token = await broker.mint({ apps: [app] });
    env = { ENTRY_BROKER: proxy.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' };
  }, backend.setupTimeoutMs);
  afterAll(async () => {
    await proxy?.stop();
    await broker?.stop();
    await backend.cleanup();
  });

  /** The broker's log lines from `from` on that say a peer was taken for gone or stalled. */
  const peerEnds = (from: number) => broker.logs.slice(from).filter((l) => l.includes('ENTRY_PEER'));

  it('enter … -- cmd across a 2 s cut: each line once, in order, exit 7, one status line', async () => {
    const child = spawn(process.execPath, [CLI, app, 'web', '1', '--', 'sh', '-c', SCRIPT], { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    let cut = 0;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!cut && out.includes('line 8\n')) {
        cut = Date.now();
        proxy.cut(CUT_MS);
      }
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(cut).toBeGreaterThan(0);
    expect(out).toBe(expectedLines);
    expect(status).toBe(7);
    expect(err).toBe('enter: connection lost, reconnecting…\n');
  }, 60_000);

  it('the TypeScript API: the same run across the same cut', async () => {
    const accepted = proxy.accepted;
    const started = Date.now();
    const timer = setTimeout(() => proxy.cut(CUT_MS), 2_000);
    const result = await run({ broker: proxy.url, token, target, command: ['sh', '-c', SCRIPT] });
    clearTimeout(timer);
    // The command ran its whole course through the cut (not ended early and retried).
    expect(Date.now() - started).toBeGreaterThan(LINES * 250);
    expect(proxy.accepted, 'a second connection: the resume').toBeGreaterThan(accepted + 1);
    expect(result.stdout.toString()).toBe(expectedLines);
    expect(result.exitCode).toBe(7);
  }, 60_000);

  it(`seq 1 ${SEQ_SHORT} through the TypeScript API across three cuts arrives byte for byte, exit 0`, async () => {
    const expected = seqOf(SEQ_SHORT);
    const accepted = proxy.accepted;
    const p = await spawnRemote({ broker: proxy.url, token, target, command: ['seq', '1', String(SEQ_SHORT)] });
    const hash = createHash('md5');
    let bytes = 0;
    let cuts = 0;
    p.stdout.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      // At a quarter, a half and three quarters of the output, a short cut each.
      if (cuts < 3 && bytes > ((cuts + 1) * expected.bytes) / 4) {
        cuts++;
        proxy.cut(500);
      }
    });
    const ended = new Promise((r) => p.stdout.on('end', r));
    expect(await p.wait()).toBe(0);
    await ended;
    expect(cuts).toBe(3);
    expect(proxy.accepted, 'three resumes').toBeGreaterThanOrEqual(accepted + 4);
    expect(bytes).toBe(expected.bytes);
    expect(hash.digest('hex')).toBe(expected.md5);
  }, 60_000);

  it(`a link down for ${LONG_CUT_MS / 1000} s while seq prints ${mb(seqOutput.bytes)} MB: the process is held back, the broker stays within 32 MB, the resumed client gets every byte`, async () => {
    await timedEcho(broker.wsUrl, token, target);
    const baseline = broker.rss();
    const p = await spawnRemote({ broker: proxy.url, token, target, command: ['seq', '1', String(SEQ)] });
    const hash = createHash('md5');
    let bytes = 0;
    let cut: () => void;
    const wasCut = new Promise<void>((r) => (cut = r));
    p.stdout.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      if (bytes === c.length) {
        proxy.cut(LONG_CUT_MS);
        cut();
      }
    });
    const ended = new Promise((r) => p.stdout.on('end', r));
    await wasCut;
    const samples: number[] = [];
    const start = Date.now();
    while (Date.now() - start < LONG_CUT_MS - 500) {
      samples.push(broker.rss());
      await new Promise((r) => setTimeout(r, 100));
    }
    const seqRuns = (await handle.processes()).some((l) => l.startsWith(`seq 1 ${SEQ}`));
    const growth = Math.max(...samples) - baseline;
    console.log(`resume-liveness-backends (${backend.kind}): broker RSS ${mb(baseline)} MB, grew ${mb(growth)} MB while the link was down`);
    expect(await p.wait()).toBe(0);
    await ended;
    expect(seqRuns, 'seq is held back while the client is away').toBe(true);
    expect(growth, `broker RSS growth while the link was down (baseline ${mb(baseline)} MB)`).toBeLessThan(RSS_LIMIT);
    expect(bytes).toBe(seqOutput.bytes);
    expect(hash.digest('hex')).toBe(seqOutput.md5);
  }, 120_000);

  it('8 MiB of input across a cut reaches the command once, in order', async () => {
    const input = Buffer.alloc(INPUT_BYTES);
    for (let i = 0; i < INPUT_BYTES; i += 4) input.writeUInt32BE(i / 4, i);
    const accepted = proxy.accepted;
    const p = await spawnRemote({ broker: proxy.url, token, target, command: ['sh', '-c', 'md5sum; echo done'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const CHUNK = 64 * 1024;
    for (let pos = 0; pos < INPUT_BYTES; pos += CHUNK) {
      if (pos === INPUT_BYTES / 2) proxy.cut(CUT_MS);
      if (!p.stdin.write(input.subarray(pos, pos + CHUNK))) await new Promise((r) => p.stdin.once('drain', r));
    }
    p.stdin.end();
    expect(await p.wait()).toBe(0);
    expect(proxy.accepted, 'a resume').toBeGreaterThan(accepted + 1);
    expect(out).toBe(`${createHash('md5').update(input).digest('hex')}  -\ndone\n`);
  }, 60_000);

  it('an interactive shell across a cut keeps its variables, and a running loop prints each line once', async () => {
    const term = new TmuxTerminal(100, 30, { ...env, TERM: 'xterm-256color' });
    try {
      await term.waitFor(/local\$\s*$/m);
      term.line(`node ${CLI} ${app} web 1`);
      await term.waitFor(/bash-[\d.]+#\s*$/m, 30_000);
      term.line('KEPT=blip-$((6*7)); for i in $(seq 1 8); do echo "tick $i"; sleep 0.5; done');
      await term.waitFor(/^tick 2$/m);
      proxy.cut(CUT_MS);
      await term.waitFor(/reconnecting \(\d+ s left\)/);
      await term.waitFor(/^tick 8$/m, 20_000);
      await term.waitFor(/bash-[\d.]+#\s*$/m);
      term.line('echo "kept:$KEPT"');
      const screen = await term.waitFor(/^kept:blip-42$/m);
      for (let i = 1; i <= 8; i++) expect(screen.match(new RegExp(`^tick ${i}$`, 'gm'))?.length, `tick ${i}`).toBe(1);
      expect(screen).not.toMatch(/reconnecting/);
      term.line('exit');
      await term.waitFor(/local\$\s*$/m);
    } finally {
      term.kill();
    }
  }, 60_000);

  it(`a CLI stopped for ${PAUSE_MS / 1000} s while seq prints ${mb(seqOutput.bytes)} MB: the process is held back, the broker stays within 32 MB, no peer is taken for gone, every byte arrives`, async () => {
    // Warmed up (a session, JIT) before the baseline is taken.
    await timedEcho(broker.wsUrl, token, target);
    const logsFrom = broker.logs.length;
    const baseline = broker.rss();
    const reader = stoppedReader([process.execPath, CLI, app, 'web', '1', '--', 'seq', '1', String(SEQ)], { ...process.env, ...env, ENTRY_BROKER: broker.url });
    await reader.stopped;

    const samples: number[] = [];
    const start = Date.now();
    while (Date.now() - start < PAUSE_MS) {
      samples.push(broker.rss());
      await new Promise((r) => setTimeout(r, 100));
    }
    const seqRuns = (await handle.processes()).some((p) => p.startsWith(`seq 1 ${SEQ}`));
    const growth = Math.max(...samples) - baseline;
    console.log(`resume-liveness-backends (${backend.kind}): broker RSS ${mb(baseline)} MB, grew ${mb(growth)} MB while the reader was stopped`);
    reader.resume();
    const r = await reader.done;

    expect(seqRuns, 'seq is held back while nobody reads').toBe(true);
    expect(growth, `broker RSS growth while stopped (baseline ${mb(baseline)} MB)`).toBeLessThan(RSS_LIMIT);
    expect(peerEnds(logsFrom)).toEqual([]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.atStop).toBeLessThan(seqOutput.bytes / 2);
    expect(r.bytes).toBe(seqOutput.bytes);
    expect(r.md5).toBe(seqOutput.md5);
  }, 120_000);

  it.each([
    { who: 'a TypeScript API caller that leaves stdout', count: SEQ, tty: false, expected: seqOutput },
    { who: 'a terminal session left', count: SEQ_TTY, tty: true, expected: seqOf(SEQ_TTY, '\r\n') },
  ])(`$who unread for ${PAUSE_MS / 1000} s while seq prints gets every byte, exit 0`, async ({ count, tty, expected }) => {
    const logsFrom = broker.logs.length;
    const p = await spawnRemote({ broker: broker.url, token, target, command: ['seq', '1', String(count)], tty });
    // Nothing reads stdout yet: the stream fills, the API stops reading the socket.
    await new Promise((r) => setTimeout(r, PAUSE_MS));
    const hash = createHash('md5');
    let bytes = 0;
    p.stdout.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    const ended = new Promise((r) => p.stdout.on('end', r));
    expect(await p.wait()).toBe(0);
    await ended;
    expect(bytes).toBe(expected.bytes);
    expect(hash.digest('hex')).toBe(expected.md5);
    expect(peerEnds(logsFrom)).toEqual([]);
  }, 120_000);
});
