import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../broker/audit/events.js';
import { decodeResumeTicket, encodeExecSpec, encodeRequest, encodeResumeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { endReason, ExecConnection, type SessionEnd } from '../../client/protocol/connection.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { parseCast } from '../helpers/cast.js';
import { awaitFile, containerProcesses, TestContainers, touchIn, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { WireClient } from '../helpers/wire-client.js';
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';

/**
 * Session resume through a loopback proxy whose links the test resets (TCP RST) and keeps down
 * for a while: the client reconnects by itself and the session goes on with every byte once.
 */

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const SEQ = 2_000_000;
const expectedSeq = (() => {
  let s = '';
  for (let i = 1; i <= SEQ; i++) s += `${i}\n`;
  return { md5: md5(s), bytes: Buffer.byteLength(s) };
})();

/** A client session through the proxy, collecting what it gets. */
function collect(conn: ExecConnection) {
  const out: Buffer[] = [];
  const resumes: number[] = [];
  let bytes = 0;
  conn.on('stdout', (b: Buffer) => {
    out.push(Buffer.from(b));
    bytes += b.length;
  });
  conn.on('resumed', (r: { awayMs: number }) => resumes.push(r.awayMs));
  return {
    out,
    resumes,
    get bytes() {
      return bytes;
    },
    text: () => Buffer.concat(out).toString('utf8'),
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  await eventually(async () => check(), what, timeoutMs);
}

describe('session resume', () => {
  const containers = new TestContainers();
  const app = uniqueApp('resume');
  const target = { app, proc: 'web', instance: 1 };
  let containerId = '';
  let b: TestBroker;
  let proxy: TcpProxy;
  let token = '';
  let admin = '';

  beforeAll(async () => {
    b = await startTestBroker();
    proxy = new TcpProxy(b.url);
    await proxy.start();
    containerId = await containers.entry(app, 'web', 1);
    token = await b.mint({ apps: [app] });
    admin = await b.mint({ roles: ['entry-admin'] }, { user: 'auditor' });
  });
  afterAll(async () => {
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  const open = (argv: string[], tty = false) =>
    ExecConnection.open({ broker: proxy.url, token, target, resume: true, spec: { argv: argv.map((a) => Buffer.from(a)), tty, cols: tty ? 80 : 0, rows: tty ? 24 : 0 } });

  const audit = async (query: string) => {
    const res = await fetch(`${b.url}/api/audit?${query}`, { headers: { authorization: `Bearer ${admin}` } });
    return ((await res.json()) as { events: AuditEvent[] }).events;
  };

  it('a shell keeps its variables across a dropped connection; one session, one session.resumed, a recording without gap or repeat', async () => {
    const conn = await open([], true);
    const got = collect(conn);
    conn.write(Buffer.from('KEPT=resumed-$((6*7)); echo "set:$KEPT"\r'));
    await until(() => got.text().includes('set:resumed-42'), 'the variable set');
    proxy.cut(1_000);
    // Typed while the link is down: sent once the session is back.
    conn.write(Buffer.from('echo "after:$KEPT"\r'));
    await until(() => got.text().includes('after:resumed-42'), 'the variable after the resume');
    expect(got.resumes.length).toBe(1);
    conn.write(Buffer.from('exit 3\r'));
    const end = await conn.done;
    expect(end.exitCode).toBe(3);
    expect(got.text().match(/after:resumed-42/g)?.length).toBe(1);
    console.log(`resume: shell back ${got.resumes[0]} ms after the link broke (down 1000 ms)`);

    const starts = (await audit(`type=session.start&app=${app}`)).filter((e) => e.tty);
    expect(starts.length).toBe(1);
    const sessionId = starts[0]!.sessionId!;
    await eventually(async () => (await audit(`session=${sessionId}`)).some((e) => e.type === 'session.end'), 'session.end');
    const events = await audit(`session=${sessionId}`);
    const resumed = events.filter((e) => e.type === 'session.resumed');
    expect(resumed.length).toBe(1);
    expect(resumed[0]).toMatchObject({ source: '127.0.0.1', user: 'alice', app });
    expect(resumed[0]!.broker).toBeTruthy();
    expect(events.filter((e) => e.type === 'session.end')).toMatchObject([{ how: 'exited', exitCode: 3 }]);

    const path = join(b.recordingsDir, `${sessionId}.cast`);
    await eventually(async () => existsSync(path) && readFileSync(path, 'utf8').includes('exit 3'), 'the recording');
    const recorded = parseCast(path)
      .events.filter(([, c]) => c === 'o')
      .map(([, , d]) => d)
      .join('');
    // What the client saw is what was recorded: nothing missing, nothing twice.
    expect(recorded).toBe(got.text());
  }, 60_000);

  it('seq 1 2000000 across three forced reconnects mid-output: 0 bytes lost, 0 duplicated, exit 0', async () => {
    const conn = await open(['seq', '1', String(SEQ)]);
    const got = collect(conn);
    const cuts = [3_000_000, 7_000_000, 11_000_000];
    const cutAt: number[] = [];
    conn.on('stdout', () => {
      if (cutAt.length < cuts.length && got.bytes > cuts[cutAt.length]!) {
        cutAt.push(got.bytes);
        proxy.cut(500);
      }
    });
    const end: SessionEnd = await conn.done;
    const all = Buffer.concat(got.out);
    expect(cutAt.length).toBe(3);
    expect(got.resumes.length).toBe(3);
    expect(all.length).toBe(expectedSeq.bytes);
    expect(md5(all)).toBe(expectedSeq.md5);
    expect(end.exitCode).toBe(0);
    console.log(`resume: seq 1 ${SEQ} cut at bytes ${cutAt.join(', ')}: ${all.length - expectedSeq.bytes} bytes lost/extra, checksum equal; back after ${got.resumes.join(', ')} ms`);
  }, 60_000);

  it('input sent across the blip is neither lost nor doubled', async () => {
    const conn = await open(['cat']);
    const got = collect(conn);
    let sent = '';
    let n = 0;
    const send = () => {
      const line = `line ${++n}\n`;
      sent += line;
      conn.write(Buffer.from(line));
    };
    for (let i = 0; i < 200; i++) send();
    await until(() => got.text().length === sent.length, 'the first lines back');
    // Lines keep going in while the link is cut and down.
    const pump = setInterval(() => {
      for (let i = 0; i < 20; i++) send();
    }, 10);
    await new Promise((r) => setTimeout(r, 100));
    proxy.cut(700);
    await new Promise((r) => setTimeout(r, 1_000));
    clearInterval(pump);
    for (let i = 0; i < 200; i++) send();
    conn.endInput();
    const end = await conn.done;
    expect(got.resumes.length).toBe(1);
    expect(end.exitCode).toBe(0);
    expect(got.text()).toBe(sent);
    console.log(`resume: ${n} input lines across the blip, each once`);
  }, 60_000);

  it('a command that exits while the connection is down: the rest of its output and its exit status after the resume', async () => {
    // The command ends once the link is down, not a fixed time after it started.
    const go = `/tmp/go-${Date.now()}`;
    const conn = await open(['sh', '-c', `echo start; ${awaitFile(go)}; echo done; exit 5`]);
    const got = collect(conn);
    await until(() => got.text().includes('start'), 'the start line');
    proxy.cut(2_500);
    await touchIn(containerId, go);
    const end = await conn.done;
    expect(got.text()).toBe('start\ndone\n');
    expect(end.exitCode).toBe(5);
    expect(got.resumes.length).toBe(1);
  }, 30_000);

  it('a signal sent while the connection is down reaches the command once it is back', async () => {
    const conn = await open(['sh', '-c', 'trap "echo got TERM; exit 9" TERM; echo ready; while :; do sleep 0.1; done']);
    const got = collect(conn);
    await until(() => got.text().includes('ready'), 'the trap to be set');
    const reconnecting = new Promise((resolve) => conn.once('reconnecting', resolve));
    proxy.cut(1_000);
    await reconnecting;
    conn.signal('TERM');
    const end = await conn.done;
    expect(got.resumes.length).toBe(1);
    expect(got.text()).toBe('ready\ngot TERM\n');
    expect(end.exitCode).toBe(9);
  }, 30_000);

  it('a scripted run keeps stdout and stderr apart after a resume, a character split between two writes included', async () => {
    // After the blip: the first two bytes of "€" on stdout, an X on stderr, the last byte of "€".
    const go = `/tmp/go-${Date.now()}`;
    const conn = await open(['sh', '-c', `echo start; ${awaitFile(go)}; printf '\\342\\202'; sleep 0.3; printf X >&2; sleep 0.3; printf '\\254\\n'`]);
    const got = collect(conn);
    const stderr: Buffer[] = [];
    conn.on('stderr', (b: Buffer) => stderr.push(Buffer.from(b)));
    await until(() => got.text().includes('start'), 'the start line');
    proxy.cut(500);
    await touchIn(containerId, go);
    const end = await conn.done;
    expect(got.resumes.length).toBe(1);
    expect(end.exitCode).toBe(0);
    expect(Buffer.concat(got.out).toString('hex')).toBe(Buffer.from('start\n€\n').toString('hex'));
    expect(Buffer.concat(stderr).toString('hex')).toBe(Buffer.from('X').toString('hex'));
  }, 30_000);

  it('a client still reading its backlog when the process exits and the link breaks: the rest of the output and the exit status after the resume', async () => {
    const conn = await open(['sh', '-c', 'echo start; sleep 0.3; seq 1 100000; exit 23']);
    const got = collect(conn);
    await until(() => got.text().includes('start'), 'the start line');
    // A reader that stopped (`| less`, a laptop closed): the output waits in the socket buffers.
    conn.pause();
    await until(() => b.logs.some((l) => l.includes('"msg":"session end"') && l.includes('"exitCode":23')), 'the process to exit');
    proxy.cut(500);
    conn.resume();
    const end = await conn.done;
    let expected = 'start\n';
    for (let i = 1; i <= 100_000; i++) expected += `${i}\n`;
    expect(got.text().length).toBe(expected.length);
    expect(got.text() === expected).toBe(true);
    expect(end.exitCode).toBe(23);
    expect(got.resumes.length).toBe(1);
  }, 30_000);

  it("refuses a resume with another user's credential; the session goes on untouched", async () => {
    // A resumable session, as the CLI opens it, over a wire client to see the ticket.
    const owner = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    owner.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'read x; echo "got:$x"'].map((a) => Buffer.from(a)), resumable: true })));
    await owner.waitFor(() => owner.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the ticket');
    const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
    expect(ticket.token.length).toBe(32);
    expect(ticket.graceMs).toBe(60_000);

    const mallory = await b.mint({ apps: [app] }, { user: 'mallory' });
    const thief = await WireClient.connect(b.wsUrl, { 'access-token': mallory, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2', 'entry-resume': ticket.session });
    thief.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 0 })));
    await thief.closed;
    expect(thief.closeMessage()?.code).toBe('ENTRY_RESUME_DENIED');
    // Same user, wrong token: refused the same way.
    const guess = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2', 'entry-resume': ticket.session });
    guess.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: Buffer.alloc(32, 1), outputOffset: 0 })));
    await guess.closed;
    expect(guess.closeMessage()?.code).toBe('ENTRY_RESUME_DENIED');
    // The owner's session is as it was.
    owner.send(RequestType.PLAIN, 'still-mine\n');
    await owner.waitFor(() => owner.stdoutText().includes('got:still-mine'), 'the owner session answering');
    await owner.closed;
    expect(owner.messages.find((m) => m.msgType === ResponseType.EXIT)).toBeTruthy();
    expect(b.logs.some((l) => l.includes(Buffer.from(ticket.token).toString('base64')) || l.includes(Buffer.from(ticket.token).toString('hex')))).toBe(false);
  }, 30_000);

  it('refuses a resume while an administrator\'s kill is ending the session, rather than resuming it to end it', async () => {
    const owner = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
    // SIGHUP ignored: the kill waits --kill-grace (2 s) for it before SIGKILL.
    owner.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', "trap '' HUP; echo ready; exec sleep 4343"].map((a) => Buffer.from(a)), resumable: true })));
    await owner.waitFor(() => owner.stdoutText() === 'ready\n', 'ready');
    const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
    owner.ws.terminate();
    await owner.closed;
    const killed = await fetch(`${b.url}/api/sessions/${ticket.session}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } });
    expect(killed.status).toBe(202);
    await eventually(async () => b.logs.some((l) => l.includes('"msg":"session kill"') && l.includes(ticket.session)), 'the kill');
    // Still being ended: its process waits out the kill grace.
    expect((await containerProcesses(containerId)).some((p) => p.includes('sleep 4343'))).toBe(true);
    const late = await WireClient.connect(b.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2', 'entry-resume': ticket.session });
    late.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 0 })));
    await late.closed;
    expect(late.closeMessage()?.code).toBe('ENTRY_RESUME_EXPIRED');
    // Why it is over is said: the kill, not a grace period that ran out.
    expect(new TextDecoder().decode(late.closeMessage()!.content)).toMatch(/the session is ending: session ended by an administrator/);
    expect(late.messages.some((m) => m.msgType === ResponseType.RESUMABLE)).toBe(false);
    expect(b.logs.some((l) => l.includes('"msg":"session resumed"') && l.includes(ticket.session))).toBe(false);
    await eventually(async () => !(await containerProcesses(containerId)).some((p) => p.includes('sleep 4343')), 'the process ended');
  }, 30_000);

  it('refuses resumes that name no live session, or send anything but a well-formed RESUME', async () => {
    const headers = (session: string) => ({ 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2', 'entry-resume': session });
    const cases: Array<[string, string, Uint8Array, string]> = [
      ['an unknown session', '00000000-0000-4000-8000-000000000000', encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: Buffer.alloc(32, 7), outputOffset: 0 })), 'ENTRY_RESUME_EXPIRED'],
      ['a malformed RESUME', '00000000-0000-4000-8000-000000000000', encodeRequest(RequestType.RESUME, Buffer.from([0x0a, 0x40, 1, 2])), 'ENTRY_BAD_FRAME'],
      ['START instead of RESUME', '00000000-0000-4000-8000-000000000000', encodeRequest(RequestType.START, encodeExecSpec({ argv: [Buffer.from('true')] })), 'ENTRY_BAD_FRAME'],
      ['a session id that is none', '../../etc', encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: Buffer.alloc(32), outputOffset: 0 })), 'ENTRY_BAD_REQUEST'],
    ];
    for (const [what, session, frame, code] of cases) {
      const c = await WireClient.connect(b.wsUrl, headers(session));
      c.ws.send(frame);
      await c.closed;
      expect(c.closeMessage()?.code, what).toBe(code);
    }
  }, 30_000);

  it('a broker at --max-sessions still takes back a session it holds', async () => {
    const full = await startTestBroker({ 'max-sessions': 1 });
    const fullProxy = new TcpProxy(full.url);
    await fullProxy.start();
    try {
      const ftoken = await full.mint({ apps: [app] });
      const go = `/tmp/go-${Date.now()}`;
      const conn = await ExecConnection.open({ broker: fullProxy.url, token: ftoken, target, resume: true, spec: { argv: ['sh', '-c', `echo one; ${awaitFile(go)}; echo two`].map((a) => Buffer.from(a)) } });
      const got = collect(conn);
      await until(() => got.text() === 'one\n', 'the first line');
      fullProxy.cut(300);
      await touchIn(containerId, go);
      const end = await conn.done;
      expect(got.text()).toBe('one\ntwo\n');
      expect(end.exitCode).toBe(0);
      expect(got.resumes.length).toBe(1);
    } finally {
      await fullProxy.stop();
      await full.stop();
    }
  }, 30_000);

  describe('with a 3 s grace period', () => {
    let quick: TestBroker;
    let quickProxy: TcpProxy;
    beforeAll(async () => {
      // Long enough that a look at the processes one second after the cut, however slow the
      // engine is to answer it, still falls inside the grace period.
      quick = await startTestBroker({ 'resume-grace': 3_000, 'kill-grace': 500, 'ping-interval': 500 });
      quickProxy = new TcpProxy(quick.url);
      await quickProxy.start();
    });
    afterAll(async () => {
      await quickProxy?.stop();
      await quick?.stop();
    });

    it('after the grace period the resume is refused (ENTRY_RESUME_EXPIRED) and the processes are gone', async () => {
      const qtoken = await quick.mint({ apps: [app] });
      const owner = await WireClient.connect(quickProxy.url.replace('http', 'ws') + '/enter', { 'access-token': qtoken, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });
      owner.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: ['sleep', '4242'].map((a) => Buffer.from(a)), resumable: true })));
      await owner.waitFor(() => owner.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the ticket');
      const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
      await eventually(async () => (await containerProcesses(containerId)).some((p) => p.includes('sleep 4242')), 'sleep running');
      quickProxy.cut();
      await owner.closed;
      // Kept during the grace period.
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await containerProcesses(containerId)).some((p) => p.includes('sleep 4242'))).toBe(true);
      await eventually(async () => !(await containerProcesses(containerId)).some((p) => p.includes('sleep 4242')), 'sleep gone after the grace period', 10_000);
      const late = await WireClient.connect(quick.wsUrl, { 'access-token': qtoken, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2', 'entry-resume': ticket.session });
      late.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 0 })));
      const closed = await late.closed;
      expect(late.closeMessage()?.code).toBe('ENTRY_RESUME_EXPIRED');
      expect(closed.code).toBe(4412);
    }, 30_000);

    it('a link that goes silent (nothing closed, nothing moves): the client notices after three missed pings and resumes', async () => {
      const qtoken = await quick.mint({ apps: [app] });
      const conn = await ExecConnection.open({ broker: quickProxy.url, token: qtoken, target, resume: true, spec: { argv: ['sh', '-c', 'for i in $(seq 1 16); do echo "t $i"; sleep 0.5; done'].map((a) => Buffer.from(a)) } });
      const got = collect(conn);
      await until(() => got.text().includes('t 2\n'), 'the first lines');
      const frozen = Date.now();
      quickProxy.freeze();
      await until(() => got.resumes.length === 1, 'the resume', 15_000);
      const noticed = Date.now() - frozen;
      const end = await conn.done;
      expect(end.exitCode).toBe(0);
      expect(got.text()).toBe(Array.from({ length: 16 }, (_, i) => `t ${i + 1}\n`).join(''));
      // 3 pings of 500 ms and a 2 s margin, checked every 500 ms.
      expect(noticed).toBeLessThan(6_000);
      console.log(`resume: a silent link noticed and resumed in ${noticed} ms (ping 500 ms)`);
    }, 30_000);

    it('without resume, a link that goes silent ends the session after three missed pings of the interval the broker gave, rather than hanging', async () => {
      const qtoken = await quick.mint({ apps: [app] });
      const conn = await ExecConnection.open({ broker: quickProxy.url, token: qtoken, target, resume: false, spec: { argv: ['sh', '-c', 'echo up; sleep 4343'].map((a) => Buffer.from(a)) } });
      const got = collect(conn);
      await until(() => got.text() === 'up\n', 'the first line');
      const frozen = Date.now();
      quickProxy.freeze();
      const end = await conn.done;
      const noticed = Date.now() - frozen;
      expect(end.exitCode).toBeUndefined();
      expect(end.code).toBe('ENTRY_CONNECTION_LOST');
      expect(endReason(end)).toMatch(/^nothing heard from the broker for \d+ s: the connection is taken for lost$/);
      expect(got.resumes.length).toBe(0);
      // 3 pings of 500 ms and a 2 s margin, checked every 500 ms.
      expect(noticed).toBeLessThan(6_000);
      console.log(`resume: without resume, a silent link ended the session after ${noticed} ms (ping 500 ms)`);
      // The broker's side of the link is frozen too: its session runs on until the link is reset.
      quickProxy.cut();
      await eventually(async () => !(await containerProcesses(containerId)).some((p) => p.includes('sleep 4343')), 'sleep 4343 gone', 10_000);
    }, 30_000);

    it('keeps pinging while it ends a session, so that a client watching for silence sees the end, not a lost link', async () => {
      // The session's process ignores SIGHUP: its end waits the whole --kill-grace (2.6 s) before
      // SIGKILL, longer than the client's silence limit (3 pings of 100 ms and a 2 s margin).
      const slow = await startTestBroker({ 'ping-interval': 100, 'kill-grace': 2_600, 'max-session': 1_500 });
      try {
        const conn = await ExecConnection.open({ broker: slow.url, token: await slow.mint({ apps: [app] }), target, resume: false, spec: { argv: ['sh', '-c', "trap '' HUP; echo up; sleep 4344"].map((a) => Buffer.from(a)) } });
        const got = collect(conn);
        await until(() => got.text() === 'up\n', 'the first line');
        const end = await conn.done;
        expect(end.code).toBe('ENTRY_MAX_DURATION');
      } finally {
        await slow.stop();
      }
    }, 30_000);

    it('a link that breaks while the end is on its way: the short tail and the exit status after the resume', async () => {
      const qtoken = await quick.mint({ apps: [app] });
      const conn = await ExecConnection.open({ broker: quickProxy.url, token: qtoken, target, resume: true, spec: { argv: ['sh', '-c', 'echo start; sleep 0.3; seq 1 2000; exit 23'].map((a) => Buffer.from(a)) } });
      const got = collect(conn);
      await until(() => got.text() === 'start\n', 'the start line');
      // The tail, EXIT and CLOSE leave the broker but stop in the network; then the link breaks.
      // Under the clients' acknowledgement batch: no count of unacknowledged bytes can tell it apart.
      quickProxy.freeze();
      await until(() => quick.logs.some((l) => l.includes('"msg":"session end"') && l.includes('"exitCode":23')), 'the process to exit');
      quickProxy.cut(200);
      const end = await conn.done;
      let expected = 'start\n';
      for (let i = 1; i <= 2_000; i++) expected += `${i}\n`;
      expect(got.text() === expected, `${got.text().length} of ${expected.length} characters`).toBe(true);
      expect(end.exitCode).toBe(23);
      expect(got.resumes.length).toBe(1);
    }, 30_000);

    it('the client gives up when the grace period ends: ENTRY_RESUME_EXPIRED, not an exit status', async () => {
      const qtoken = await quick.mint({ apps: [app] });
      const conn = await ExecConnection.open({ broker: quickProxy.url, token: qtoken, target, resume: true, spec: { argv: [Buffer.from('sleep'), Buffer.from('4345')] } });
      const tries: number[] = [];
      conn.on('reconnecting', (s: { attempt: number }) => tries.push(s.attempt));
      await eventually(async () => (await containerProcesses(containerId)).some((p) => p.includes('sleep 4345')), 'sleep running');
      quickProxy.cut(5_000);
      const end = await conn.done;
      expect(end.code).toBe('ENTRY_RESUME_EXPIRED');
      expect(end.exitCode).toBeUndefined();
      expect(tries.length).toBeGreaterThan(2);
      await eventually(async () => !(await containerProcesses(containerId)).some((p) => p.includes('sleep 4345')), 'sleep gone', 10_000);
    }, 30_000);
  });
});
