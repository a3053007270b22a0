import { createHash, randomBytes } from 'node:crypto';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TERM_GRACE_MS } from '../../client/cli/interrupts.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI, runCli } from '../helpers/cli.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, EXIT_CODE_CASES } from '../helpers/sessions.js';

const execFileAsync = promisify(execFile);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('enter <app> <proc> <n> -- <cmd>: scripted runs', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;
  let env: Record<string, string>;
  let containerId = '';
  const enter = (args: string[], stdin?: Buffer | string) => runCli([app, 'web', '1', ...args], env, stdin);

  beforeAll(async () => {
    b = await startTestBroker();
    containerId = await containers.entry(app, 'web', 1);
    env = { ENTRY_BROKER: b.url, ENTRY_TOKEN: await b.mint({ apps: [app] }), ENTRY_CONFIG_DIR: '/nonexistent' };
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  it('returns the remote exit code as its own: 0, 1, 7, 127, 137', async () => {
    for (const [cmd, code] of EXIT_CODE_CASES) {
      const r = await enter(['--', ...cmd]);
      expect(r.status, cmd.join(' ')).toBe(code);
    }
  });

  it('passes stdin through and delivers EOF: echo hello | enter … -- cat', async () => {
    const r = await enter(['--', 'cat'], 'hello\n');
    expect(r.stdout.toString()).toBe('hello\n');
    expect(r.status).toBe(0);
  });

  it('leaves stdin unread with -n: a loop reading a list runs once per line, as with ssh -n', async () => {
    // Asynchronously: the broker answers from this process.
    const loop = async (flag: string) =>
      (await execFileAsync('sh', ['-c', `printf '1\\n2\\n3\\n' | while read n; do node ${CLI} ${flag} ${app} web 1 -- echo "line $n"; done`], { env: { ...process.env, ...env } })).stdout;
    expect(await loop('-n')).toBe('line 1\nline 2\nline 3\n');
    // Without it the first run reads the rest of the list (as ssh and docker exec -i do).
    expect(await loop('')).toBe('line 1\n');
    // The command's input ends at once: cat ends with nothing read.
    for (const flag of ['-n', '--no-stdin']) {
      const r = await enter([flag, '--', 'sh', '-c', 'cat; echo "status $?"'], 'never read\n');
      expect(r.stderr.toString(), flag).toBe('');
      expect(r.stdout.toString(), flag).toBe('status 0\n');
      expect(r.status, flag).toBe(0);
    }
  });

  it('keeps stderr on stderr', async () => {
    const r = await enter(['--', 'sh', '-c', 'echo out; echo err >&2']);
    expect(r.stdout.toString()).toBe('out\n');
    expect(r.stderr.toString()).toBe('err\n');
  });

  it('loses nothing at exit: seq 1 2000000, 20 runs in a row', async () => {
    const expected = sha256(execFileSync('seq', ['1', '2000000'], { maxBuffer: 64 << 20 }));
    for (let i = 0; i < 20; i++) {
      const r = await enter(['--', 'seq', '1', '2000000']);
      expect(r.status).toBe(0);
      expect(sha256(r.stdout), `run ${i + 1}`).toBe(expected);
    }
  });

  it('carries 50 MB of random bytes both ways through cat and sha256sum', async () => {
    const data = randomBytes(50 * 1024 * 1024);
    const viaCat = await enter(['--', 'cat'], data);
    expect(viaCat.status).toBe(0);
    expect(viaCat.stdout.length).toBe(data.length);
    expect(sha256(viaCat.stdout)).toBe(sha256(data));
    const viaSum = await enter(['--', 'sha256sum'], data);
    expect(viaSum.stdout.toString().split(' ')[0]).toBe(sha256(data));
  });

  it('delivers argv exactly: spaces, quotes, $, newlines, non-ASCII', async () => {
    const args = ['a b', '"double"', "'single'", '$HOME $(id)', 'line1\nline2', 'ünïcødé ✓', '', '*'];
    const r = await enter(['--', 'printf', '%s\\0', ...args]);
    expect(r.stdout.toString('utf8').split('\0').slice(0, -1)).toEqual(args);
  });

  it('runs as another user, in another directory, with extra env (-u -w -e)', async () => {
    const r = await enter(['-u', 'app', '-w', '/tmp', '-e', 'GREETING=hi there', '--', 'sh', '-c', 'id -un; pwd; echo "$GREETING"']);
    expect(r.stdout.toString()).toBe('app\n/tmp\nhi there\n');
  });

  it('takes -e before the positionals, once per variable, KEY alone for this shell\'s value, as docker does', async () => {
    const r = await runCli(['-e', 'A=1', '-e', 'B=two words', app, 'web', '1', '--', 'sh', '-c', 'echo "$A/$B"'], env);
    expect(r.stderr.toString()).toBe('');
    expect(r.stdout.toString()).toBe('1/two words\n');
    const one = await runCli(['-e', 'A=only', app, 'web', '1', '--', 'sh', '-c', 'echo "$A"'], env);
    expect(one.stdout.toString()).toBe('only\n');
    // KEY alone passes this shell's value, and nothing when it has none, as docker exec -e KEY does.
    const own = await runCli(['-e', 'MINE', '-e', 'UNSET_HERE', app, 'web', '1', '--', 'sh', '-c', 'echo "$MINE/${UNSET_HERE-unset}"'], { ...env, MINE: 'from here' });
    expect(own.stdout.toString()).toBe('from here/unset\n');
    const bad = await runCli(['-e', 'no pe', app, 'web', '1', '--', 'true'], env);
    expect(bad.stderr.toString()).toBe('enter: -e wants KEY=VALUE or KEY, got "no pe"\n');
    expect(bad.status).toBe(255);
  });

  it('allocates no TTY for pipes, and one with -t', async () => {
    const plain = await enter(['--', 'sh', '-c', 'tty || true']);
    expect(plain.stdout.toString()).toMatch(/not a tty/);
    const forced = await enter(['-t', '--', 'sh', '-c', 'tty']);
    expect(forced.stdout.toString()).toMatch(/\/dev\/pts\//);
  });

  it('exits 255 with a clear line for lookup and auth failures', async () => {
    const missing = await runCli([app, 'web', '9', '--', 'true'], env);
    expect(missing.status).toBe(255);
    expect(missing.stderr.toString()).toBe(`enter: container not found: ${app}/web/9\n  ${app}/web has instance 1 (\`enter ls ${app}\` shows their state).\n`);
    const badToken = await runCli([app, 'web', '1', '--', 'true'], { ...env, ENTRY_TOKEN: 'nope' });
    expect(badToken.status).toBe(255);
    expect(badToken.stderr.toString()).toMatch(/^enter: invalid access token/);
    const noBroker = await runCli([app, 'web', '1', '--', 'true'], { ...env, ENTRY_BROKER: 'http://127.0.0.1:1' });
    expect(noBroker.status).toBe(255);
    expect(noBroker.stderr.toString()).toMatch(/^enter: cannot reach broker/);
    // A broker address with a path the broker does not serve: its own words, not a bare status.
    const wrongPath = await runCli([app, 'web', '1', '--', 'true'], { ...env, ENTRY_BROKER: `${b.url}/wrong` });
    expect(wrongPath.status).toBe(255);
    expect(wrongPath.stderr.toString()).toMatch(/^enter: not found: \/wrong\/enter \(the WebSocket endpoints are \/enter/);
  });

  it('refuses -c on a Docker target, naming what -c is for, and runs nothing', async () => {
    const r = await enter(['-c', 'sidecar', '--', 'echo', 'ran']);
    expect(r.status).toBe(255);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr.toString()).toBe('enter: bad request: container "sidecar" given, but -c (container) picks a container of a Kubernetes pod and this target is a Docker container: leave it out\n');
  });

  it('says what exists near a misspelt target: the instances, the procs, a close app name', async () => {
    // A token for every app named like this one, so that a misspelt app is looked up, not refused.
    const wide = { ...env, ENTRY_TOKEN: await b.mint({ apps: [`${app}*`] }) };
    const lines = async (args: string[]) => {
      const r = await runCli([...args, '--', 'true'], wide);
      expect(r.status, args.join(' ')).toBe(255);
      return r.stderr.toString();
    };
    expect(await lines([app, 'wbe', '1'])).toBe(`enter: container not found: ${app}/wbe/1\n  ${app} has no proc wbe: did you mean web? its procs are web.\n`);
    expect(await lines([app, 'web', 'one'])).toBe(`enter: container not found: ${app}/web/one\n  ${app}/web has instance 1 (\`enter ls ${app}\` shows their state).\n`);
    expect(await lines([`${app}x`, 'web', '1'])).toBe(`enter: container not found: ${app}x/web/1\n  No app named ${app}x among those you may enter: did you mean ${app}? \`enter ls\` lists them.\n`);
  });

  it('ends the remote command on SIGINT and SIGTERM when there is no TTY', async () => {
    for (const [sig, code, seconds] of [['SIGINT', 130, 6001], ['SIGTERM', 143, 6002]] as const) {
      // A sleep of its own length, to be told apart in the container's process list. In the
      // foreground: a non-interactive shell starts background jobs with SIGINT ignored.
      const mine = (p: string) => p.includes(`sleep ${seconds}`);
      const child = spawn(process.execPath, [CLI, app, 'web', '1', '--', 'sh', '-c', `echo ready; sleep ${seconds}; echo not reached`], { env: { ...process.env, ...env } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await eventually(async () => (await containerProcesses(containerId)).some(mine), `the remote sleep (${sig})`);
      child.kill(sig);
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(status, sig).toBe(code);
      expect(out, sig).toBe('ready\n');
      await eventually(async () => !(await containerProcesses(containerId)).some((p) => mine(p) || p.includes('echo ready')), `the remote command to be gone (${sig})`);
    }
  });

  it('stops on SIGTERM when the remote command ignores it: after the grace, or at once on a second SIGTERM, exit 143, the command gone', async () => {
    for (const [twice, seconds] of [[false, 6004], [true, 6005]] as const) {
      const mine = (p: string) => p.includes(`sleep ${seconds}`);
      // TERM ignored by the shell and, inherited, by its sleep.
      const child = spawn(process.execPath, [CLI, app, 'web', '1', '--', 'sh', '-c', `trap "" TERM; echo ready; sleep ${seconds}`], { env: { ...process.env, ...env } });
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await eventually(async () => (await containerProcesses(containerId)).some(mine), 'the remote sleep');
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      const sent = Date.now();
      child.kill('SIGTERM');
      if (twice) {
        // The first is on its way to the command (and ignored there); the second is for enter.
        await new Promise((r) => setTimeout(r, 200));
        child.kill('SIGTERM');
      }
      const status = await closed;
      const took = Date.now() - sent;
      expect(status, `twice: ${twice}`).toBe(143);
      if (twice) expect(took).toBeLessThan(TERM_GRACE_MS / 2);
      else expect(took).toBeGreaterThanOrEqual(TERM_GRACE_MS);
      await eventually(async () => !(await containerProcesses(containerId)).some(mine), 'the remote command to be gone');
    }
  }, 60_000);

  it('passes SIGQUIT on to the remote command when there is no TTY', async () => {
    // exec: a shell waiting for a child does not end on the child's SIGQUIT; sleep itself does.
    const child = spawn(process.execPath, [CLI, app, 'web', '1', '--', 'sh', '-c', 'echo ready; exec sleep 6003'], { env: { ...process.env, ...env } });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await eventually(async () => (await containerProcesses(containerId)).some((p) => p.includes('sleep 6003')), 'the remote sleep');
    child.kill('SIGQUIT');
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(status).toBe(131);
  });
});
