import { spawn } from 'node:child_process';
import { maxHeaderSize } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../broker/errors.js';
import { ExecConnection } from '../../client/protocol/connection.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * A resume the broker refuses for good ends the session at the first refusal, with the broker's
 * code and words: another try would meet the same refusal, and waiting out the grace period
 * would only end in a vaguer ENTRY_RESUME_EXPIRED.
 */

/** What Node counts against its header limit (--max-http-header-size): the URL, and each header's name and value. */
function countedHead(head: string): number {
  const [requestLine = '', ...lines] = head.split('\r\n');
  let counted = (requestLine.split(' ')[1] ?? '').length;
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) counted += colon + line.slice(colon + 1).trim().length;
  }
  return counted;
}

/** The counted size of a resume's header: `entry-resume` and a session id (a UUID). */
const RESUME_HEADER_COUNTED = 'entry-resume'.length + 36;

describe('a resume refused for good', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rgood');
  const target = { app, proc: 'web', instance: 1 };
  const GRACE_MS = 30_000;
  let b: TestBroker;
  let proxy: TcpProxy;

  beforeAll(async () => {
    b = await startTestBroker({ 'resume-grace': GRACE_MS });
    proxy = new TcpProxy(b.url);
    await proxy.start();
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  const runCli = (token: string, argv: string[]) =>
    spawn(process.execPath, [CLI, app, 'web', '1', '--', ...argv], { env: { ...process.env, ENTRY_BROKER: proxy.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' }, stdio: ['ignore', 'pipe', 'pipe'] });

  /** The counted size of the upgrade request a client writes (`run` opens a session with the token given), its token aside. */
  async function headWithoutToken(run: (token: string) => Promise<unknown>): Promise<number> {
    let sent = '';
    proxy.tap = (chunk) => (sent += chunk.toString('latin1'));
    const token = await b.mint({ apps: [app] });
    try {
      await run(token);
    } finally {
      proxy.tap = undefined;
    }
    return countedHead(sent.slice(0, sent.indexOf('\r\n\r\n'))) - token.length;
  }

  /**
   * A token the broker takes whose upgrade fits under the header limit with a few bytes to spare,
   * fewer than a resume's header adds: a session opens with it, and each resume of it is refused
   * by the broker's HTTP listener (431 ENTRY_HEADERS_TOO_LARGE) before it reads any further.
   * An identity provider's token with many group claims comes near that size.
   */
  async function tokenFillingTheHead(run: (token: string) => Promise<unknown>): Promise<string> {
    const headWithout = await headWithoutToken(run);
    const most = maxHeaderSize - 1 - headWithout;
    const least = maxHeaderSize - RESUME_HEADER_COUNTED - headWithout + 1;
    const aim = most - 10;
    let pad = 0;
    for (let round = 0; round < 10; round++) {
      const token = await b.mint({ apps: [app], pad: 'x'.repeat(pad) });
      if (token.length >= least && token.length <= most) return token;
      // Each character of the claim is 4/3 of one in the token (base64url).
      pad = Math.max(0, pad + Math.round(((aim - token.length) * 3) / 4));
    }
    throw new Error(`no token between ${least} and ${most} characters`);
  }

  it('ends the session at the first try when the broker refuses the upgrade itself, with its code and message, not at the end of the grace period', async () => {
    const token = await tokenFillingTheHead(async (t) => (await ExecConnection.open({ broker: proxy.url, token: t, target, resume: true, spec: { argv: [Buffer.from('true')] } })).done);
    const conn = await ExecConnection.open({ broker: proxy.url, token, target, resume: true, spec: { argv: ['sh', '-c', 'echo up; sleep 600'].map((a) => Buffer.from(a)) } });
    let out = '';
    conn.on('stdout', (d: Buffer) => (out += d.toString()));
    let tries = 0;
    conn.on('reconnecting', () => tries++);
    await eventually(async () => out === 'up\n', 'the session');
    const cut = Date.now();
    proxy.cut();
    const end = await conn.done;
    expect(end.code).toBe('ENTRY_HEADERS_TOO_LARGE');
    expect(end.message).toBe(ERRORS.ENTRY_HEADERS_TOO_LARGE.message);
    expect(end.exitCode).toBeUndefined();
    expect(tries).toBe(1);
    expect(Date.now() - cut).toBeLessThan(5_000);
  });

  it('the CLI says the refusal and exits 255 at once', async () => {
    const token = await tokenFillingTheHead((t) => new Promise((resolve) => runCli(t, ['true']).once('exit', resolve)));
    const child = runCli(token, ['sh', '-c', 'echo up; sleep 600']);
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
    try {
      await eventually(async () => out === 'up\n', 'the session');
      const cut = Date.now();
      proxy.cut();
      expect(await exited).toBe(255);
      expect(Date.now() - cut).toBeLessThan(5_000);
    } finally {
      child.kill('SIGKILL');
    }
    const lines = err.split('\n');
    expect(lines[0]).toBe('enter: connection lost, reconnecting…');
    expect(lines[1]).toBe(`enter: ${ERRORS.ENTRY_HEADERS_TOO_LARGE.message}`);
    expect(err).not.toContain('could not be resumed in time');
  });

  it('ends the session at the first try when the token was revoked while the link was down: ENTRY_TOKEN_REVOKED', async () => {
    const token = await b.mint({ apps: [app] }, { user: 'rosa' });
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const conn = await ExecConnection.open({ broker: proxy.url, token, target, resume: true, spec: { argv: ['sh', '-c', 'echo up; sleep 600'].map((a) => Buffer.from(a)) } });
    let out = '';
    conn.on('stdout', (d: Buffer) => (out += d.toString()));
    let tries = 0;
    conn.on('reconnecting', () => tries++);
    await eventually(async () => out === 'up\n', 'the session');
    // Down for long enough to revoke the token before the first try gets through.
    const cut = Date.now();
    proxy.cut(60_000);
    await eventually(async () => tries >= 1, 'a resume try');
    const res = await fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ user: 'rosa' }) });
    expect(res.status).toBe(204);
    proxy.cut(0);
    const end = await conn.done;
    expect(end.code).toBe('ENTRY_TOKEN_REVOKED');
    expect(Date.now() - cut).toBeLessThan(10_000);
  });
});
