import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StdinEncoder, wrapCommand } from '../../broker/kubernetes/exec-command.js';
import { PumpEndWatch, pumpEndMark } from '../../broker/kubernetes/pump-end.js';

/**
 * The shells images carry as /bin/sh: dash (Debian), busybox ash (Alpine, the demo image), bash,
 * and bash as sh (Red Hat's images), which runs in POSIX mode.
 */
const shells = [
  ['dash', '/bin/dash'],
  ['busybox', '/bin/busybox'],
  ['bash', '/bin/bash'],
  ['bash --posix', '/bin/bash'],
].filter(([, path]) => existsSync(path!));

/** The arguments that run `script` with `shell` (as named in `shells`). */
function shellArgs(shell: string, script: string, rest: string[]): string[] {
  if (shell.endsWith('busybox')) return ['sh', '-c', script, ...rest];
  if (shell === 'bash --posix') return ['--posix', '-c', script, ...rest];
  return ['-c', script, ...rest];
}

/** The pump's end mark the wrapper writes for a session (its ENTRY_SESSION, '' when none). */
const PUMP_MARK = /\0entry-stdin-end:[^\n]*\n/;

/**
 * Answers the wrapper's end mark as the broker does (two lengths of 0 on stdin); the stderr
 * before and after it, the mark taken out, and when the mark came.
 */
function answerPumpEnd(child: ChildProcessWithoutNullStreams, sessionId = ''): { stderr: () => string; markedAt: () => number | undefined } {
  const watch = new PumpEndWatch(pumpEndMark(sessionId));
  let stderr = '';
  let markedAt: number | undefined;
  child.stderr.on('data', (d: Buffer) => {
    stderr += watch.scan(d).toString();
    if (watch.exitCode !== undefined && markedAt === undefined) {
      markedAt = performance.now();
      const enc = new StdinEncoder();
      child.stdin.write(Buffer.concat([enc.end(), enc.end()]));
    }
  });
  child.stdin.on('error', () => undefined);
  return { stderr: () => stderr, markedAt: () => markedAt };
}

function run(shell: string, argv: string[], input: Buffer = Buffer.alloc(0)) {
  const [name, path] = shells.find(([n]) => n === shell)!;
  const [, , script, ...rest] = argv;
  const t0 = Date.now();
  const r = spawnSync(path!, shellArgs(name!, script!, rest), { input, timeout: 10_000 });
  // A signal death as the exec's status gives it: 128 + the signal's number.
  const code = r.signal ? 128 + constants.signals[r.signal] : r.status;
  // The pump's end mark is the broker's to take out (see answerPumpEnd).
  return { code, stdout: r.stdout, stderr: r.stderr.toString('latin1').replace(PUMP_MARK, ''), ms: Date.now() - t0 };
}

describe.each(shells)('the Kubernetes exec wrapper under %s', (shell, path) => {
  it('sets the environment and working directory, then runs the command with its exit code', () => {
    const argv = wrapCommand({ cmd: ['sh', '-c', 'echo "$FOO|$ENTRY_SESSION|$(pwd)"; exit 3'], env: ['FOO=bar baz $x \'q\'', 'ENTRY_SESSION=s1'], workdir: '/tmp', stdinPump: false });
    const r = run(shell!, argv);
    expect(r.stdout.toString()).toBe("bar baz $x 'q'|s1|/tmp\n");
    expect(r.code).toBe(3);
  });

  it("hands the command any environment, even names a shell script might use, unchanged, and runs it", () => {
    const env = ['n=0', 'pump=1', 'stage2=echo replaced', 'len=5', 'ENTRY_SESSION=s3'];
    for (const stdinPump of [false, true]) {
      const argv = wrapCommand({ cmd: ['sh', '-c', 'echo "$n|$pump|$stage2|$len|$ENTRY_SESSION"'], env, workdir: '', stdinPump });
      const r = run(shell!, argv, stdinPump ? new StdinEncoder().end() : Buffer.alloc(0));
      expect(r.stdout.toString(), `pump ${stdinPump}`).toBe('0|1|echo replaced|5|s3\n');
      expect(r.code).toBe(0);
    }
  });

  it('hands the command the names a shell manages (SHLVL, OPTIND, PPID, IFS, PWD) as given, with or without the stdin pump, and a command named with a = the environment as exported', () => {
    const given = ['SHLVL=7', 'OPTIND=3', 'PPID=42', 'IFS=x', 'PWD=/elsewhere', 'ENTRY_SESSION=s5'];
    for (const stdinPump of [false, true]) {
      const r = run(shell!, wrapCommand({ cmd: ['env'], env: given, workdir: '/tmp', stdinPump }), stdinPump ? new StdinEncoder().end() : Buffer.alloc(0));
      const env = r.stdout.toString().split('\n');
      expect(env, `pump ${stdinPump}`).toEqual(expect.arrayContaining(given));
      expect(r.code).toBe(0);
    }
    // env(1) would take such a name for one more entry.
    const dir = mkdtempSync(join(tmpdir(), 'entry-eq-'));
    try {
      writeFileSync(join(dir, 'a=b'), '#!/bin/sh\necho "ran|$FOO"\n', { mode: 0o755 });
      const r = run(shell!, wrapCommand({ cmd: [join(dir, 'a=b')], env: ['FOO=bar'], workdir: '', stdinPump: false }));
      expect(r.stdout.toString()).toBe('ran|bar\n');
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs the command with an entry the shell holds read-only (UID) in the environment, leaving that one out', () => {
    const argv = wrapCommand({ cmd: ['sh', '-c', 'echo "$FOO|$ENTRY_SESSION"'], env: ['UID=1000', 'FOO=bar', 'ENTRY_SESSION=s4'], workdir: '', stdinPump: false });
    const r = run(shell!, argv);
    expect(r.stdout.toString()).toBe('bar|s4\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('says so when the working directory is missing, and when the command is', () => {
    const r = run(shell!, wrapCommand({ cmd: ['true'], env: [], workdir: '/no/such/dir', stdinPump: false }));
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('cannot change to working directory /no/such/dir');
    const missing = run(shell!, wrapCommand({ cmd: ['no-such-command-here'], env: [], workdir: '', stdinPump: false }));
    expect(missing.code).toBe(127);
  });

  // busybox's own dd comes with its sh: it cannot be missing there.
  if (!shell!.endsWith('busybox')) {
    it('says why when the image lacks what the stdin pump needs, instead of hanging', () => {
      const argv = wrapCommand({ cmd: ['cat'], env: ['PATH=/nonexistent'], workdir: '', stdinPump: true });
      const r = run(shell!, argv);
      expect(r.code).toBe(126);
      expect(r.stderr).toContain('needs dd in the image');
    });

    it('says why when the image\'s dd cannot read whole chunks, instead of cutting stdin short', () => {
      const dir = mkdtempSync(join(tmpdir(), 'entry-dd-'));
      try {
        // A dd as an old or slimmed BusyBox builds it: no iflag.
        writeFileSync(join(dir, 'dd'), '#!/bin/sh\necho "dd: invalid argument \'iflag=fullblock\'" >&2\nexit 1\n', { mode: 0o755 });
        const argv = wrapCommand({ cmd: ['wc', '-c'], env: [`PATH=${dir}:/usr/bin:/bin`], workdir: '', stdinPump: true });
        const r = run(shell!, argv, Buffer.concat([new StdinEncoder().push(Buffer.alloc(5_000, 1)), new StdinEncoder().end()]));
        expect(r.code).toBe(126);
        expect(r.stderr).toContain('one that takes iflag=fullblock');
        expect(r.stdout.toString()).toBe('');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("gives a command's signal death as its status and nothing else: the shell that waits for it behind the pump writes no \"Terminated\" of its own", () => {
    for (const stdinPump of [false, true]) {
      for (const [sig, code] of [['TERM', 143], ['KILL', 137], ['HUP', 129], ['SEGV', 139]] as const) {
        const r = run(shell!, wrapCommand({ cmd: ['sh', '-c', `echo own >&2; kill -${sig} $$`], env: [], workdir: '', stdinPump }), stdinPump ? new StdinEncoder().end() : Buffer.alloc(0));
        expect(r.code, `pump ${stdinPump}, ${sig}`).toBe(code);
        expect(r.stderr, `pump ${stdinPump}, ${sig}`).toBe('own\n');
      }
    }
  });

  it('feeds stdin through the pump byte-exact, and EOF at a chunk of length 0', () => {
    const enc = new StdinEncoder();
    const data = Buffer.from(Array.from({ length: 70_001 }, (_, i) => (i * 7) % 256));
    const parts = [enc.push(data.subarray(0, 1)), enc.push(data.subarray(1, 40_000)), enc.push(data.subarray(40_000)), enc.end(), Buffer.from('after EOF, never read\n')];
    const r = run(shell!, wrapCommand({ cmd: ['cat'], env: ['ENTRY_SESSION=s2'], workdir: '', stdinPump: true }), Buffer.concat(parts));
    expect(r.code).toBe(0);
    expect(Buffer.compare(r.stdout, data)).toBe(0);
  });

  it('EOF ends the input while the exec stream stays open, as it does on a v4 exec', async () => {
    const enc = new StdinEncoder();
    const argv = wrapCommand({ cmd: ['wc', '-c'], env: [], workdir: '', stdinPump: true });
    const [, , script, ...rest] = argv;
    const child = spawn(path!, shellArgs(shell!, script!, rest), { stdio: ['pipe', 'pipe', 'pipe'] });
    answerPumpEnd(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stdin.write(enc.push(Buffer.alloc(100_000, 7)));
    child.stdin.write(enc.push(Buffer.from('x')));
    child.stdin.write(enc.end());
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.stdin.destroy();
    expect(code).toBe(0);
    expect(out.trim()).toBe('100001');
  });

  it('an empty stdin is EOF at once; a command that reads nothing ends as soon as its end is answered', async () => {
    const enc = new StdinEncoder();
    const r = run(shell!, wrapCommand({ cmd: ['wc', '-c'], env: [], workdir: '', stdinPump: true }), enc.end());
    expect(r.stdout.toString().trim()).toBe('0');
    // stdin held open by a writer that never ends it: the command still ends, and so does the exec.
    const argv = wrapCommand({ cmd: ['echo', 'done'], env: [], workdir: '', stdinPump: true });
    const [, , script, ...rest] = argv;
    const child = spawn(path!, shellArgs(shell!, script!, rest), { stdio: ['pipe', 'pipe', 'pipe'] });
    answerPumpEnd(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.stdin.destroy();
    expect(code).toBe(0);
    expect(out).toBe('done\n');
  });

  it('says on stderr when the command has ended and reads stdin up to the answer before it exits, so nothing sent is left unread', async () => {
    const argv = wrapCommand({ cmd: ['sh', '-c', 'head -c 10; echo " err" >&2; exit 4'], env: ['ENTRY_SESSION=s9'], workdir: '', stdinPump: true });
    const [, , script, ...rest] = argv;
    const child = spawn(path!, shellArgs(shell!, script!, rest), { stdio: ['pipe', 'pipe', 'pipe'] });
    const end = answerPumpEnd(child, 's9');
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    // stdin flows on after the command has ended, as from \`yes |\`, until the end is answered.
    const enc = new StdinEncoder();
    let sent = 0;
    const feed = () => {
      while (end.markedAt() === undefined && sent < 2_000) {
        sent++;
        if (!child.stdin.write(enc.push(Buffer.alloc(4_096, 121)))) return void child.stdin.once('drain', feed);
      }
    };
    feed();
    const exit = await new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: performance.now() })));
    child.stdin.destroy();
    expect(exit.code).toBe(4);
    expect(out).toBe('y'.repeat(10));
    expect(end.stderr()).toBe(' err\n');
    expect(end.markedAt(), 'the end told').toBeDefined();
    expect(exit.at, 'the exit after the answer').toBeGreaterThanOrEqual(end.markedAt()!);
    expect(sent, 'stdin stopped at the end, not at the test bound').toBeLessThan(2_000);
  });
});
