import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { AuditEvent } from '../../broker/audit/events.js';
import { startBrokerProcess } from '../helpers/broker-process.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { parseCast, renderCast } from '../helpers/cast.js';
import { CLI, runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { TmuxTerminal } from '../helpers/tmux.js';
import { WireClient } from '../helpers/wire-client.js';

describe('audit events and recordings', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  let b: TestBroker;
  let admin: string;
  const target = { app, proc: 'web', instance: 1 };

  beforeAll(async () => {
    b = await startTestBroker({ 'alert-rule': ['rm\\s+-rf', 'shadow'], 'recording-max-bytes': 200_000 });
    await containers.entry(app, 'web', 1);
    admin = await b.mint({ roles: ['entry-admin'] }, { user: 'auditor' });
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
  });

  const audit = async (query: string) => {
    const res = await fetch(`${b.url}/api/audit?${query}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as { events: AuditEvent[]; next?: string };
  };

  it('records a CLI session: start and end events, a .cast that replays to the same screen', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'casey' });
    const term = new TmuxTerminal(90, 20, { ENTRY_BROKER: b.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent', TERM: 'xterm-256color' });
    try {
      await term.waitFor(/local\$\s*$/m);
      term.line(`node ${CLI} ${app} web 1`);
      await term.waitFor(/bash-5\.2#\s*$/m);
      term.line("printf '\\033[1;32mgreen\\033[0m plain\\n'; seq 1 5; echo 'ünï ✓'");
      // The output and the prompt after it: the shell writes them apart, and the replay below has both.
      await term.waitFor(/^ünï ✓\s*\nbash-5\.2#\s*$/m);
      // Final screen while the session is still on it.
      const live = term.screen().split('\n').slice(0, 20);
      const sessionLine = (await audit('type=session.start&user=casey')).events[0]!;
      term.line('exit 4');
      await eventually(async () => (await audit('type=session.end&user=casey')).events.length === 1, 'session.end');
      const end = (await audit('type=session.end&user=casey')).events[0]!;
      expect(end).toMatchObject({ type: 'session.end', user: 'casey', app, proc: 'web', instance: '1', how: 'exited', exitCode: 4, sessionId: sessionLine.sessionId });
      expect(end.durationMs).toBeGreaterThan(0);
      expect(end.bytesOut).toBeGreaterThan(50);
      expect(end.bytesIn).toBeGreaterThan(20);
      expect(sessionLine).toMatchObject({ source: '127.0.0.1', tty: true });

      const path = join(b.recordingsDir, `${sessionLine.sessionId}.cast`);
      await eventually(async () => existsSync(path) && readFileSync(path, 'utf8').includes('exit 4'), 'the recording to be complete');
      const cast = parseCast(path);
      expect(cast.header).toMatchObject({ version: 2, width: 90, height: 20, env: { TERM: 'tmux-256color' } });
      expect(cast.events.every(([t], i) => i === 0 || t >= cast.events[i - 1]![0])).toBe(true);
      // Replay up to the moment the live screen was taken: before "exit 4" was typed.
      const upTo = cast.events.findIndex(([, c, d]) => c === 'o' && d.includes('exit 4'));
      const replayed = await renderCast({ ...cast, events: cast.events.slice(0, upTo) });
      const norm = (lines: string[]) => lines.map((l) => l.trimEnd()).filter((l) => l && !l.startsWith('local$'));
      expect(norm(replayed)).toEqual(norm(live).filter((l) => !l.includes(CLI)));

      const dl = await fetch(`${b.url}/api/sessions/${sessionLine.sessionId}/recording`, { headers: { authorization: `Bearer ${admin}` } });
      expect(dl.status).toBe(200);
      expect(dl.headers.get('content-type')).toBe('application/x-asciicast');
      expect(await dl.text()).toBe(readFileSync(path, 'utf8'));
      const notAdmin = await fetch(`${b.url}/api/sessions/${sessionLine.sessionId}/recording`, { headers: { authorization: `Bearer ${token}` } });
      expect(notAdmin.status).toBe(403);
    } finally {
      term.kill();
    }
  });

  it('logs commands rebuilt from edited keystrokes, and raises alerts', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'typist' });
    const c = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    c.send(1, '80 24');
    c.type('ech\x7f\x7fcho hello\r');
    c.type('cat /etc/shadow\x15echo safe\r');
    c.type('rm -rf /tmp/nothing-here\r');
    c.type('exit\r');
    await c.closed;
    await eventually(async () => (await audit('type=command&user=typist')).events.length === 4, 'four command events');
    const lines = (await audit('type=command&user=typist')).events.map((e) => e.line).reverse();
    expect(lines).toEqual(['echo hello', 'echo safe', 'rm -rf /tmp/nothing-here', 'exit']);
    const alerts = (await audit('type=alert&user=typist')).events;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ line: 'rm -rf /tmp/nothing-here', rule: 'rm\\s+-rf' });
    const found = (await audit('q=nothing-here')).events;
    expect(found.map((e) => e.type).sort()).toEqual(['alert', 'command']);
  });

  it('refuses a time range it cannot read, a time in seconds among them', async () => {
    const seconds = Math.floor(Date.now() / 1000);
    for (const [query, says] of [[`since=${seconds}`, 'looks like seconds'], [`until=${seconds}`, 'looks like seconds'], ['since=yesterday', 'ISO time or epoch ms']] as const) {
      const res = await fetch(`${b.url}/api/audit?${query}`, { headers: { authorization: `Bearer ${admin}` } });
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { message: string }).message, query).toContain(says);
    }
    expect((await audit(`since=${Date.now() - 3_600_000}`)).events.length).toBeGreaterThan(0);
  });

  it('refuses a parameter or a type it does not know rather than answer unfiltered or empty (usr= for user=, sesion.start)', async () => {
    const res = await fetch(`${b.url}/api/audit?usr=casey`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'ENTRY_BAD_REQUEST', message: 'bad request: unknown parameter "usr": the filters are user, app, type, session, q, since, until, limit, cursor' });
    const typo = await fetch(`${b.url}/api/audit?type=sesion.start`, { headers: { authorization: `Bearer ${admin}` } });
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as { message: string }).message).toMatch(/^bad request: unknown type "sesion\.start": the types are session\.start, exec, /);
  });

  it('keeps no text of a line typed at a password prompt, in the trail or the log', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'sudoer' });
    // Echo off before the prompt shows, as sudo does (a key typed before it would be echoed).
    const script = 'stty -echo; printf "[sudo] password for sudoer: "; read pw; stty echo; echo; printf "ok> "; read cmd; echo "ran $cmd"';
    const s = await openCommand(b.wsUrl, token, target, ['sh', '-c', script], true);
    await s.waitFor(() => s.stdoutText().includes('password for sudoer: '), 'the password prompt');
    s.type('s3cret-shadow-pw\r');
    await s.waitFor(() => s.stdoutText().includes('ok> '), 'the next prompt');
    s.type('ls /etc\r');
    await s.closed;
    await eventually(async () => (await audit('type=command&user=sudoer')).events.length === 2, 'two command events');
    const commands = (await audit('type=command&user=sudoer')).events.reverse();
    expect(commands[0]).toMatchObject({ hidden: true });
    expect(commands[0]).not.toHaveProperty('line');
    expect(commands[1]).toMatchObject({ line: 'ls /etc', exact: true });
    // Still held to the alert rules ('shadow'): the prompt is the user's to print.
    const alerts = (await audit('type=alert&user=sudoer')).events;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ hidden: true, rule: 'shadow' });
    expect(alerts[0]).not.toHaveProperty('line');
    expect(b.logs.some((l) => l.includes('s3cret-shadow-pw'))).toBe(false);
    expect(b.logs.some((l) => l.includes('"hidden":true'))).toBe(true);
  });

  it('keeps no text of a line typed at a prompt that shows a star per key', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'starry' });
    // sudo with pwfeedback: echo off, a star written for each key as it comes. Echo goes off
    // before the prompt shows, as sudo does: a key typed before would be echoed, on the screen too.
    const script =
      'stty -echo -icanon min 1; printf "[sudo] password for starry: "; ' +
      'while c=$(dd bs=1 count=1 2>/dev/null); [ -n "$c" ]; do printf "*"; done; stty sane; echo; printf "ok> "; read cmd; echo "ran $cmd"';
    const s = await openCommand(b.wsUrl, token, target, ['sh', '-c', script], true);
    await s.waitFor(() => s.stdoutText().includes('password for starry: '), 'the password prompt');
    const secret = 'st4rry-pw';
    for (let i = 0; i < secret.length; i++) {
      s.type(secret[i]!);
      await s.waitFor(() => s.stdoutText().endsWith('*'.repeat(i + 1)), `star ${i + 1}`);
    }
    s.type('\r');
    await s.waitFor(() => s.stdoutText().includes('ok> '), 'the next prompt');
    s.type('ls /etc\r');
    await s.closed;
    await eventually(async () => (await audit('type=command&user=starry')).events.length === 2, 'two command events');
    const commands = (await audit('type=command&user=starry')).events.reverse();
    expect(commands[0]).toMatchObject({ hidden: true });
    expect(commands[0]).not.toHaveProperty('line');
    expect(commands[1]).toMatchObject({ line: 'ls /etc', exact: true });
    expect(b.logs.some((l) => l.includes(secret))).toBe(false);
  });

  it("stores a scripted run's first 4,096 characters, and raises alerts on its whole command", async () => {
    const token = await b.mint({ apps: [app] }, { user: 'padder' });
    const padding = 'x'.repeat(5000);
    const s = await openCommand(b.wsUrl, token, target, ['sh', '-c', `: ${padding}; cat /etc/shadow`]);
    await s.closed;
    await eventually(async () => (await audit('type=alert&user=padder')).events.length === 1, 'the alert');
    const exec = (await audit('type=exec&user=padder')).events[0]!;
    expect(exec.argvTruncated).toBe(true);
    // Each argument counts with one more for its place in the list.
    expect(exec.argv!.reduce((n, a) => n + a.length + 1, 0)).toBe(4096);
    expect(exec.argv!.slice(0, 2)).toEqual(['sh', '-c']);
    const alert = (await audit('type=alert&user=padder')).events[0]!;
    expect(alert).toMatchObject({ rule: 'shadow', exact: true });
    expect(alert.line!.length).toBe(4096);
  });

  it('records scripted runs with the exec event and stdout and stderr apart', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'scripter' });
    const r = await runCli([app, 'web', '1', '-w', '/tmp', '--', 'sh', '-c', 'echo to-out; echo to-err >&2; exit 2'], { ENTRY_BROKER: b.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' });
    expect(r.status).toBe(2);
    await eventually(async () => (await audit('type=session.end&user=scripter')).events.length === 1, 'the end event');
    const exec = (await audit('type=exec&user=scripter')).events[0]!;
    expect(exec).toMatchObject({ argv: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 2'], workdir: '/tmp', tty: false });
    const path = join(b.recordingsDir, `${exec.sessionId}.cast`);
    await eventually(async () => existsSync(path) && parseCast(path).events.length >= 2, 'the recording');
    const cast = parseCast(path);
    expect(cast.header.command).toBe('sh -c echo to-out; echo to-err >&2; exit 2');
    expect(cast.events.filter(([, c]) => c === 'o').map(([, , d]) => d).join('')).toBe('to-out\n');
    expect(cast.events.filter(([, c]) => c === 'e').map(([, , d]) => d).join('')).toBe('to-err\n');
    const replayed = await runCli(['replay', exec.sessionId!, '--speed', '50'], { ENTRY_BROKER: b.url, ENTRY_TOKEN: admin, ENTRY_CONFIG_DIR: '/nonexistent' });
    expect(replayed.status).toBe(0);
    expect(replayed.stdout.toString()).toBe('to-out\n');
    expect(replayed.stderr.toString()).toBe('to-err\n');
  });

  it("keeps a secret on a scripted command's line out of the trail, the recording and the session table", async () => {
    const token = await b.mint({ apps: [app] }, { user: 'deployer' });
    const argv = ['sh', '-c', 'echo started; read line', 'sh', '--token', 'tok-SEKRIT-1', 'API_KEY=SEKRIT-2', 'postgres://app:SEKRIT-3@db/x'];
    const s = await openCommand(b.wsUrl, token, target, argv);
    await s.waitFor(() => s.stdoutText().includes('started'), 'the command');
    const { sessions: listed } = (await (await fetch(`${b.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { sessions: Array<{ user: string; command: string[] | null }> };
    const masked = ['sh', '-c', 'echo started; read line', 'sh', '--token', '[redacted]', 'API_KEY=[redacted]', 'postgres://app:[redacted]@db/x'];
    expect(listed.find((r) => r.user === 'deployer')?.command).toEqual(masked);
    s.ws.close();
    await eventually(async () => (await audit('type=session.end&user=deployer')).events.length === 1, 'the end event');
    const exec = (await audit('type=exec&user=deployer')).events[0]!;
    expect(exec.argv).toEqual(masked);
    const path = join(b.recordingsDir, `${exec.sessionId}.cast`);
    await eventually(async () => existsSync(path), 'the recording');
    expect(parseCast(path).header.command).toBe(masked.join(' '));
    expect(readFileSync(path, 'utf8')).not.toContain('SEKRIT');
    expect(b.logs.filter((l) => l.includes('SEKRIT'))).toEqual([]);
  });

  it('counts binary output in a marker instead of storing it', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'binary' });
    const s = await openCommand(b.wsUrl, token, target, ['sh', '-c', 'echo text-before; sleep 0.2; head -c 300000 /dev/urandom; sleep 0.2; echo text-after']);
    await s.closed;
    const start = (await audit('type=session.start&user=binary')).events[0]!;
    const path = join(b.recordingsDir, `${start.sessionId}.cast`);
    await eventually(async () => existsSync(path) && readFileSync(path, 'utf8').includes('text-after'), 'the recording');
    const cast = parseCast(path);
    const markers = cast.events.filter(([, c]) => c === 'm').map(([, , d]) => d);
    const counted = markers.map((m) => Number(/entry: (\d+) bytes of binary output/.exec(m)?.[1] ?? 0)).reduce((a, n) => a + n, 0);
    expect(counted).toBeGreaterThan(250_000);
    expect(counted).toBeLessThanOrEqual(300_000);
    expect(readFileSync(path).length).toBeLessThan(20_000);
    expect(cast.events.filter(([, c]) => c === 'o').map(([, , d]) => d).join('')).toMatch(/^text-before\n[\s\S]*text-after\n$/);
  });

  it('records auth failures with the reason, and pages through the trail', async () => {
    const c = await WireClient.connect(b.wsUrl, { 'access-token': 'garbage', 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    await c.closed;
    const failure = (await audit('type=auth.failure')).events[0]!;
    expect(failure).toMatchObject({ type: 'auth.failure', source: '127.0.0.1', code: 'ENTRY_BAD_TOKEN' });
    // A browser's forged ticket is a failed authentication like a bad token.
    const forged = await WireClient.connect(`${b.wsUrl}?${new URLSearchParams({ app, proc: 'web', instance: '1', ticket: 'A'.repeat(43) })}`, {}, ['entry.v1']);
    await forged.closed;
    expect(forged.closeMessage()!.code).toBe('ENTRY_BAD_TOKEN');
    expect((await audit('type=auth.failure')).events[0]).toMatchObject({ type: 'auth.failure', source: '127.0.0.1', code: 'ENTRY_BAD_TOKEN', reason: 'invalid access token: unknown, expired or already used ticket' });
    const first = await audit('limit=2');
    expect(first.events).toHaveLength(2);
    expect(first.next).toBeDefined();
    const second = await audit(`limit=2&cursor=${first.next}`);
    expect(second.events).toHaveLength(2);
    expect(Date.parse(second.events[0]!.time)).toBeLessThanOrEqual(Date.parse(first.events[1]!.time));
    expect(second.events[0]).not.toEqual(first.events[1]);
  });

  it('caps a recording at its size limit with a marker', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'chatty' });
    const s = await openCommand(b.wsUrl, token, target, ['seq', '1', '200000']);
    await s.closed;
    const start = (await audit('type=session.start&user=chatty')).events[0]!;
    const path = join(b.recordingsDir, `${start.sessionId}.cast`);
    await eventually(async () => existsSync(path) && readFileSync(path, 'utf8').includes('recording size limit reached'), 'the marker');
    expect(readFileSync(path).length).toBeLessThan(210_000);
    expect(parseCast(path).events.at(-1)).toEqual([expect.any(Number), 'm', 'entry: recording size limit reached']);
  });

  it('deletes recordings past the retention period at start', async () => {
    const dir = join(b.recordingsDir, '..', 'retention');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    const old = join(dir, 'old-session.cast');
    const fresh = join(dir, 'fresh-session.cast');
    writeFileSync(old, '{"version":2,"width":80,"height":24}\n');
    writeFileSync(fresh, '{"version":2,"width":80,"height":24}\n');
    const longAgo = (Date.now() - 40 * 86_400_000) / 1000;
    utimesSync(old, longAgo, longAgo);
    const other = await startTestBroker({ 'recordings-dir': dir, 'recording-retention-days': 30 });
    await other.stop();
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });
});

describe('recordings survive a broker crash', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  afterAll(() => containers.removeAll());

  it('kill -9 mid-session leaves a recording that parses up to the last second', async () => {
    await containers.entry(app, 'web', 1);
    const b = await startBrokerProcess();
    onTestFinished(() => b.stop());
    const dir = /--recordings-dir/.test(b.child.spawnargs.join(' ')) ? b.child.spawnargs[b.child.spawnargs.indexOf('--recordings-dir') + 1]! : '';
    const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.1; done']);
    await s.waitFor(() => /tick 25\n/.test(s.stdoutText()), 'two and a half seconds of output');
    const started = b.logs.map((l) => JSON.parse(l) as { msg: string; session?: string }).find((l) => l.msg === 'session start')!;
    b.child.kill('SIGKILL');
    await b.exited;
    const lastSeen = Number(/tick (\d+)\n$/.exec(s.stdoutText())?.[1] ?? 0);
    const cast = parseCast(join(dir, `${started.session}.cast`));
    const recorded = cast.events.filter(([, c]) => c === 'o').map(([, , d]) => d).join('');
    const lastRecorded = Number(/tick (\d+)\n$/.exec(recorded)?.[1] ?? 0);
    console.log(`audit: after kill -9 the recording holds tick ${lastRecorded} of ${lastSeen} seen by the client`);
    // Ten ticks a second, written every half second: five behind, and up to a second more for a
    // flush late on a loaded machine. A recording written only at the end holds none of them.
    expect(lastSeen - lastRecorded).toBeLessThanOrEqual(15);
    s.ws.terminate();
  });
});
