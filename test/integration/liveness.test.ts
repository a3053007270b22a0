import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../broker/audit/events.js';
import { spawn as spawnRemote } from '../../client/api.js';
import { ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI } from '../helpers/cli.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestNginx } from '../helpers/nginx.js';
import { eventually, openCommand } from '../helpers/sessions.js';
import { stoppedReader } from '../helpers/stopped-reader.js';
import type { WireClient } from '../helpers/wire-client.js';

/**
 * A client that stops reading keeps its session and every byte: a consumer that sleeps, a CLI
 * stopped with SIGSTOP, straight to the broker and through the nginx recipe, with the broker's
 * default liveness settings (the old rule dropped such clients after two pings, 20 s). The
 * mechanism itself (an unread backlog, acknowledged by the client's kernel, is not death; the
 * stall cap) is shown with short bounds. A vanished network is in liveness-netns.test.ts.
 */

const SEQ = 3_000_000;
/** How long the consumer sleeps (ENTRY_LIVENESS_SLEEP_S to try longer pauses by hand). */
const SLEEP_S = Number(process.env['ENTRY_LIVENESS_SLEEP_S'] ?? 60);
const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');
const expected = (() => {
  let s = '';
  for (let i = 1; i <= SEQ; i++) s += `${i}\n`;
  return { md5: md5(s), bytes: Buffer.byteLength(s) };
})();

/** The socket under a wire client: pausing it stops reading at the TCP level. */
const rawSocket = (c: WireClient) => (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;

describe('a paused reader is not a dead peer', () => {
  const containers = new TestContainers();
  const app = uniqueApp('live');
  const target = { app, proc: 'web', instance: 1 };
  let containerId = '';
  let b: TestBroker;
  let nginx: TestNginx;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Default liveness settings: the paused readers below outlast the old 20 s rule by far.
    b = await startTestBroker();
    nginx = new TestNginx();
    await nginx.start([b.url]);
    containerId = await containers.entry(app, 'web', 1);
    env = { ENTRY_TOKEN: await b.mint({ apps: [app] }), ENTRY_CONFIG_DIR: '/nonexistent' };
  });
  afterAll(async () => {
    await nginx?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  /** `enter … -- seq 1 3000000 | (sleep SLEEP_S; md5sum)`, through `broker`. */
  const sleepyConsumer = (broker: string) =>
    new Promise<{ out: string; status: string }>((resolve, reject) => {
      const script = `node ${CLI} ${app} web 1 -- seq 1 ${SEQ} | (sleep ${SLEEP_S}; md5sum); echo "status=\${PIPESTATUS[0]}"`;
      const child = spawn('bash', ['-c', script], { env: { ...process.env, ...env, ENTRY_BROKER: broker }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', () => resolve({ out, status: (/status=(\d+)/.exec(out)?.[1] ?? '?') + (err ? ` stderr: ${err.trim()}` : '') }));
    });

  /** The CLI stopped with SIGSTOP for 45 s right after the first output, then continued. */
  const stoppedCli = async (broker: string) => {
    const reader = stoppedReader([process.execPath, CLI, app, 'web', '1', '--', 'seq', '1', String(SEQ)], { ...process.env, ...env, ENTRY_BROKER: broker });
    await reader.stopped;
    await new Promise((r) => setTimeout(r, 45_000));
    reader.resume();
    return reader.done;
  };

  it.concurrent(
    'a consumer that sleeps 60 s gets all of seq 1 3000000, exit 0: straight and through nginx',
    async () => {
      const [direct, proxied] = await Promise.all([sleepyConsumer(b.url), sleepyConsumer(nginx.url)]);
      expect(direct.out).toBe(`${expected.md5}  -\nstatus=0\n`);
      expect(proxied.out).toBe(`${expected.md5}  -\nstatus=0\n`);
    },
    (SLEEP_S + 60) * 1000,
  );

  it.concurrent(
    'a CLI stopped for 45 s mid-output gets all of it once continued, exit 0: straight and through nginx',
    async () => {
      const [direct, proxied] = await Promise.all([stoppedCli(b.url), stoppedCli(nginx.url)]);
      for (const r of [direct, proxied]) {
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.bytes).toBe(expected.bytes);
        expect(r.md5).toBe(expected.md5);
        // Stopped in the middle: most of the output was still on its way.
        expect(r.atStop).toBeLessThan(expected.bytes / 2);
      }
    },
    120_000,
  );

  describe('with short bounds (ping 200 ms, peer timeout 3 s)', () => {
    let quick: TestBroker;
    let admin: string;
    beforeAll(async () => {
      quick = await startTestBroker({ 'ping-interval': 200, 'peer-timeout': 3000, 'kill-grace': 300 });
      admin = await quick.mint({ roles: ['entry-admin'] }, { user: 'auditor' });
    });
    afterAll(() => quick?.stop());

    const audit = async (query: string) => {
      const res = await fetch(`${quick.url}/api/audit?${query}`, { headers: { authorization: `Bearer ${admin}` } });
      return ((await res.json()) as { events: AuditEvent[] }).events;
    };

    it('keeps a client that reads nothing for 8 s, with its backlog queued or already acknowledged', async () => {
      const token = await quick.mint({ apps: [app] });
      // Much more than every buffer on the way holds (queued), and a little (acknowledged, unread).
      const big = await openCommand(quick.wsUrl, token, target, ['seq', '1', String(SEQ)]);
      const small = await openCommand(quick.wsUrl, token, target, ['sh', '-c', 'seq 1 1000; read x; echo END']);
      await big.waitFor(() => big.stdoutText().length > 0, 'first output');
      await small.waitFor(() => small.stdoutText().includes('1000\n'), 'the small output');
      rawSocket(big).pause();
      rawSocket(small).pause();
      await new Promise((r) => setTimeout(r, 8_000));
      expect(quick.logs.filter((l) => l.includes('ENTRY_PEER'))).toEqual([]);
      rawSocket(big).resume();
      rawSocket(small).resume();
      small.send(0, 'go\n');
      await small.waitFor(() => small.stdoutText().endsWith('END\n'), 'END after the pause');
      await big.closed;
      expect(md5(big.stdoutText())).toBe(expected.md5);
      expect(new TextDecoder().decode(big.messages.find((m) => m.msgType === ResponseType.EXIT)!.content)).toBe('0');
      small.ws.close();
    }, 60_000);

    it('keeps a TypeScript API caller that leaves stdout unread for 8 s', async () => {
      const p = await spawnRemote({ broker: quick.url, token: await quick.mint({ apps: [app] }), target, command: ['seq', '1', String(SEQ)] });
      const chunks: Buffer[] = [];
      // Nothing reads stdout yet: the stream fills, the API stops reading the socket.
      await new Promise((r) => setTimeout(r, 8_000));
      expect(quick.logs.filter((l) => l.includes('ENTRY_PEER'))).toEqual([]);
      p.stdout.on('data', (c: Buffer) => chunks.push(c));
      expect(await p.wait()).toBe(0);
      expect(md5(Buffer.concat(chunks))).toBe(expected.md5);
    }, 60_000);

    it('gives a client paused while its command exits the whole backlog, EXIT and CLOSE when it reads again', async () => {
      const c = await openCommand(quick.wsUrl, await quick.mint({ apps: [app] }, { user: 'late-reader' }), target, ['seq', '1', '700000']);
      await c.waitFor(() => c.stdoutText().length > 0, 'first output');
      rawSocket(c).pause();
      // 2.7 MB fit in the buffers on the way: the command exits while nobody reads.
      await eventually(async () => (await audit('type=session.end&user=late-reader')).length === 1, 'the exit', 10_000);
      // Longer than the close handshake's 5 s: the broker must not drop a client still reading.
      await new Promise((r) => setTimeout(r, 8_000));
      rawSocket(c).resume();
      await c.closed;
      let s = '';
      for (let i = 1; i <= 700000; i++) s += `${i}\n`;
      expect(md5(c.stdoutText())).toBe(md5(s));
      expect(new TextDecoder().decode(c.messages.find((m) => m.msgType === ResponseType.EXIT)!.content)).toBe('0');
      expect(c.messages.at(-1)!.msgType).toBe(ResponseType.CLOSE);
    }, 60_000);

    it('writes session.end and drops the registry entry when the end is decided, not after the close handshake', async () => {
      const token = await quick.mint({ apps: [app] }, { user: 'pauser' });
      const c = await openCommand(quick.wsUrl, token, target, ['sh', '-c', 'echo hi; read x; exit 4']);
      await c.waitFor(() => c.stdoutText() === 'hi\n', 'hi');
      // The client stops reading, then lets the command end: it will not answer the close handshake.
      rawSocket(c).pause();
      c.send(0, 'x\n');
      const decided = Date.now();
      // Under the close handshake's 5 s, which is what waiting for the paused client would take.
      await eventually(async () => (await audit('type=session.end&user=pauser')).length === 1, 'session.end', 4_500);
      const ms = Date.now() - decided;
      const [end] = await audit('type=session.end&user=pauser');
      expect(end).toMatchObject({ how: 'exited', exitCode: 4 });
      expect(typeof (end as { durationMs?: number }).durationMs).toBe('number');
      const live = (await (await fetch(`${quick.url}/api/sessions`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { sessions: Array<{ user: string }> };
      expect(live.sessions.filter((s) => s.user === 'pauser')).toEqual([]);
      expect(c.ws.readyState).toBe(c.ws.OPEN);
      console.log(`liveness: session.end recorded ${ms} ms after the exit, the client still paused`);
      rawSocket(c).resume();
      await c.closed;
      expect(new TextDecoder().decode(c.messages.find((m) => m.msgType === ResponseType.EXIT)!.content)).toBe('4');
    }, 30_000);

    it('ends a session whose queued output has not moved for --stall-timeout, and its processes', async () => {
      const stall = await startTestBroker({ 'ping-interval': 200, 'peer-timeout': 3000, 'stall-timeout': 2000, 'kill-grace': 300 });
      try {
        const c = await openCommand(stall.wsUrl, await stall.mint({ apps: [app] }), target, ['sh', '-c', 'yes stalled-reader']);
        await c.waitFor(() => c.stdoutText().length > 0, 'first output');
        const t0 = Date.now();
        rawSocket(c).pause();
        await eventually(async () => stall.logs.some((l) => l.includes('"code":"ENTRY_PEER_STALLED"')), 'the stall', 10_000);
        const ms = Date.now() - t0;
        await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.includes('stalled-reader')), 'cleanup', 10_000);
        console.log(`liveness: stall cap 2000 ms ended the session ${ms} ms after the reader paused`);
        expect(ms).toBeGreaterThanOrEqual(2000);
        c.ws.terminate();
      } finally {
        await stall.stop();
      }
    }, 30_000);
  });
});
