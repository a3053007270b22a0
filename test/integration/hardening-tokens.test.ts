import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, execCreateCount, TestContainers, uniqueApp } from '../helpers/containers.js';
import { closeTextOf, healthz, summaryLine, timedEcho } from '../helpers/hardening.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * The token abuse matrix against a broker trusting an RSA key with a required issuer and
 * audience: every wrong token is refused on every way in (original headers, Bearer with
 * protocol 2, the browser subprotocol, the original web mode, the ticket API) with its own
 * reason, and the Docker engine sees no exec at all. A valid token is the positive control.
 */

const ISSUER = 'https://idp.test';
const AUDIENCE = 'entry';
const SUBPROTOCOL = 'entry.v1';

type Expect = { code: string; close: number; line: RegExp; http: number };
const NO_TOKEN: Expect = { code: 'ENTRY_NO_TOKEN', close: 4401, line: /no access token/, http: 401 };
const bad = (line: RegExp): Expect => ({ code: 'ENTRY_BAD_TOKEN', close: 4401, line, http: 401 });
const EXPIRED: Expect = { code: 'ENTRY_TOKEN_EXPIRED', close: 4401, line: /access token expired/, http: 401 };
const FORBIDDEN: Expect = { code: 'ENTRY_FORBIDDEN', close: 4403, line: /not permitted to enter this app: .*no grant for app/, http: 403 };
const DENIED: Expect = { code: 'ENTRY_APP_DENIED', close: 4403, line: /this app is never enterable/, http: 403 };

type Way = 'access-token' | 'bearer' | 'subprotocol' | 'web' | 'api';
const WAYS: Way[] = ['access-token', 'bearer', 'subprotocol', 'web', 'api'];

interface Outcome {
  /** close: a CLOSE message and a close code; http: the upgrade or request got this status. */
  kind: 'close' | 'http' | 'error' | 'ran';
  closeCode?: number;
  line?: string;
  code?: string;
  status?: number;
  message?: string;
}

const figures = { attempts: 0, refused: 0, execCalls: -1, positiveExecCalls: -1, oversizeOutcome: '', bytesLost: -1, leaked: -1 };

describe('token abuse matrix', () => {
  const containers = new TestContainers();
  const app = uniqueApp('ht');
  // The broker's own app is denied by default; a real container carries it here, so a lapse
  // in the deny check would reach Docker rather than fail at lookup.
  const deniedProc = `p${randomBytes(4).toString('hex')}`;
  let b: TestBroker;
  let containerId: string;
  let deniedContainerId: string;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;

  const root = mkdtempSync(join(tmpdir(), 'entry-tokens-'));

  beforeAll(async () => {
    const dir = mkdtempSync(join(root, 'keys-'));
    const keyFile = join(dir, 'rsa.pub.pem');
    writeFileSync(keyFile, publicPem);
    // The failure rate limit is its own test below; here every attempt must reach the verifier.
    b = await startTestBroker({ 'jwt-public-key': keyFile, issuer: ISSUER, audience: AUDIENCE, 'auth-failure-limit': 1_000_000 });
    containerId = await containers.entry(app, 'web', 1);
    deniedContainerId = await containers.entry('entry', deniedProc, 1);
  });
  afterAll(async () => {
    await b.stop();
    await containers.removeAll();
    rmSync(root, { recursive: true, force: true });
    console.log(
      summaryLine('hardening-tokens', {
        inputs: figures.attempts,
        faults_survived: figures.refused,
        bytes_lost: figures.bytesLost,
        processes_leaked: figures.leaked,
        exec_calls_refused: figures.execCalls,
        exec_calls_positive_control: figures.positiveExecCalls,
        oversize_token: figures.oversizeOutcome,
      }),
    );
  });

  const now = () => Math.floor(Date.now() / 1000);

  /** A correctly signed RS256 token; `claims` may override or (with undefined) drop any claim. */
  function signed(claims: Record<string, unknown> = {}, key = rsa.privateKey, header: Record<string, unknown> = { alg: 'RS256' }): Promise<string> {
    const payload: Record<string, unknown> = { sub: 'mallory', apps: [app], iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 3600, ...claims };
    for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
    return new SignJWT(payload as JWTPayload).setProtectedHeader(header as { alg: string }).sign(key);
  }

  /** One attempt to enter `target` with `token` by one way in. */
  async function attempt(way: Way, token: string | undefined, target = { app, proc: 'web', instance: '1' }): Promise<Outcome> {
    figures.attempts++;
    if (way === 'api') {
      try {
        const res = await fetch(`${b.url}/api/tickets`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ app: target.app, proc: target.proc, instance: Number(target.instance) }),
        });
        const body = (await res.json().catch(() => ({}))) as { error?: string; ticket?: string };
        return { kind: 'http', status: res.status, ...(body.error ? { code: body.error } : {}) };
      } catch (err) {
        return { kind: 'error', message: (err as Error).message };
      }
    }
    if (way === 'web') return webAttempt(token, target);
    const targetHeaders = { 'app-name': target.app, 'proc-name': target.proc, 'instance-no': target.instance };
    let headers: Record<string, string> = targetHeaders;
    let protocols: string[] | undefined;
    if (way === 'access-token' && token !== undefined) headers = { ...targetHeaders, 'access-token': token };
    if (way === 'bearer') headers = { ...targetHeaders, 'entry-protocol': '2', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) };
    if (way === 'subprotocol') protocols = [SUBPROTOCOL, ...(token !== undefined ? [`entry.bearer.${Buffer.from(token).toString('base64url')}`] : [])];
    let c: WireClient;
    try {
      c = await WireClient.connect(b.wsUrl, headers, protocols);
    } catch (err) {
      const m = /^HTTP (\d+)$/.exec((err as Error).message);
      return m ? { kind: 'http', status: Number(m[1]) } : { kind: 'error', message: (err as Error).message };
    }
    const closed = await c.closed;
    const ran = c.messages.some((m) => m.msgType === ResponseType.STDOUT || m.msgType === ResponseType.EXIT);
    return { kind: ran ? 'ran' : 'close', closeCode: closed.code, line: closeTextOf(c), code: c.closeMessage()?.code ?? '' };
  }

  /** The original `?method=web` mode: JSON messages, credentials in the first one. */
  function webAttempt(token: string | undefined, target: { app: string; proc: string; instance: string }): Promise<Outcome> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${b.wsUrl}?method=web`, { perMessageDeflate: false });
      let line = '';
      let ran = false;
      ws.on('open', () => ws.send(JSON.stringify({ ...(token !== undefined ? { access_token: token } : {}), app_name: target.app, proc_name: target.proc, instance_no: target.instance })));
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { msgType?: number; content?: string };
        if ((m.msgType ?? 0) === ResponseType.CLOSE) line = Buffer.from(m.content ?? '', 'base64').toString();
        else if ((m.msgType ?? 0) !== ResponseType.PING) ran = true;
      });
      ws.on('unexpected-response', (_req, res) => resolve({ kind: 'http', status: res.statusCode ?? 0 }));
      ws.on('error', (err) => resolve({ kind: 'error', message: err.message }));
      ws.on('close', (closeCode) => resolve({ kind: ran ? 'ran' : 'close', closeCode, line }));
    });
  }

  function expectRefused(what: string, way: Way, o: Outcome, e: Expect): void {
    const label = `${what} via ${way}`;
    if (way === 'api') {
      expect(o, label).toMatchObject({ kind: 'http', status: e.http, code: e.code });
    } else {
      expect(o.kind, `${label}: ${JSON.stringify(o)}`).toBe('close');
      expect(o.closeCode, label).toBe(e.close);
      // Every way but the original headers speaks protocol 2 or web mode; all get the line.
      expect(o.line, label).toMatch(e.line);
      expect(o.line, `${label}: red`).toContain('\x1b[31m');
      if (way === 'bearer' || way === 'subprotocol') expect(o.code, label).toBe(e.code);
      if (way === 'access-token' || way === 'web') expect(o.code ?? '', `${label}: no code for original clients`).toBe('');
    }
    figures.refused++;
  }

  it('refuses every wrong token on every way in, and Docker sees no exec', async () => {
    const since = Date.now();
    const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const hmacWithPublicPem = new SignJWT({ sub: 'mallory', apps: [app], iss: ISSUER, aud: AUDIENCE })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(publicPem));
    const hmacWithPublicPemTrimmed = new SignJWT({ sub: 'mallory', apps: [app], iss: ISSUER, aud: AUDIENCE })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(publicPem.trim()));
    const unsigned = new UnsecuredJWT({ sub: 'mallory', apps: [app], iss: ISSUER, aud: AUDIENCE }).setExpirationTime('1h').encode();
    const valid = await signed();
    const [vh, vp] = valid.split('.');
    const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const denied = { app: 'entry', proc: deniedProc, instance: '1' };

    const cases: Array<[string, string | undefined, Expect, typeof denied?]> = [
      ['no token', undefined, NO_TOKEN],
      ['empty token', '', NO_TOKEN],
      ['garbage', 'garbage', bad(/invalid access token/)],
      // Not "no token": one was sent, and it is not a token.
      ['two words (Bearer a b)', 'a b', bad(/invalid access token/)],
      ['three garbage parts', 'a.b.c', bad(/invalid access token/)],
      ['random base64url parts', `${randomBytes(20).toString('base64url')}.${randomBytes(40).toString('base64url')}.${randomBytes(64).toString('base64url')}`, bad(/invalid access token/)],
      ['a valid token cut short', valid.slice(0, -10), bad(/invalid access token/)],
      ['a valid token with its payload swapped', `${vh}.${Buffer.from(JSON.stringify({ sub: 'root', apps: ['*'], iss: ISSUER, aud: AUDIENCE, exp: now() + 3600 })).toString('base64url')}.${valid.split('.')[2]}`, bad(/signature does not verify/)],
      ['expired an hour ago', await signed({ exp: now() - 3600 }), EXPIRED],
      ['expired beyond the clock tolerance', await signed({ exp: now() - 90 }), EXPIRED],
      ['not valid for an hour (nbf)', await signed({ nbf: now() + 3600 }), bad(/claim nbf check failed/)],
      ['nbf beyond the clock tolerance', await signed({ nbf: now() + 120 }), bad(/claim nbf check failed/)],
      ['wrong issuer', await signed({ iss: 'https://evil.test' }), bad(/claim iss check failed/)],
      ['no issuer', await signed({ iss: undefined }), bad(/claim iss is missing/)],
      ['wrong audience', await signed({ aud: 'other' }), bad(/claim aud check failed/)],
      ['audience list without ours', await signed({ aud: ['a', 'b'] }), bad(/claim aud check failed/)],
      ['no audience', await signed({ aud: undefined }), bad(/claim aud is missing/)],
      ['no exp', await signed({ exp: undefined }), bad(/claim exp is missing/)],
      ['no sub', await signed({ sub: undefined }), bad(/claim sub \(the user\) is missing/)],
      ['alg none (unsigned)', unsigned, bad(/algorithm not allowed/)],
      ['alg none on a valid payload, signature kept', `${noneHeader}.${vp}.${valid.split('.')[2]}`, bad(/algorithm not allowed/)],
      ['HS256 keyed with the RSA public key PEM', await hmacWithPublicPem, bad(/algorithm not allowed/)],
      ['HS256 keyed with the trimmed PEM', await hmacWithPublicPemTrimmed, bad(/algorithm not allowed/)],
      ['wrong RSA key', await signed({}, otherRsa.privateKey), bad(/signature does not verify/)],
      ['wrong key, PS256', await signed({}, otherRsa.privateKey, { alg: 'PS256' }), bad(/signature does not verify/)],
      ['attacker key embedded as jwk header', await signed({}, attacker.privateKey, { alg: 'RS256', jwk: attackerJwk }), bad(/signature does not verify/)],
      ['EdDSA from an Ed25519 key', await signed({}, ed.privateKey, { alg: 'EdDSA' }), bad(/algorithm not allowed/)],
      ['no apps claim', await signed({ apps: undefined }), FORBIDDEN],
      ['apps is a number', await signed({ apps: 42 }), FORBIDDEN],
      ['apps is an object', await signed({ apps: { [app]: true, '*': true } }), FORBIDDEN],
      ['apps holds no strings', await signed({ apps: [42, null, { app }, [app]] }), FORBIDDEN],
      ['apps is empty', await signed({ apps: [] }), FORBIDDEN],
      ['another app', await signed({ apps: ['other-app'] }), FORBIDDEN],
      ['a prefix of the app', await signed({ apps: [app.slice(0, -1)] }), FORBIDDEN],
      ['roles not a list, admin role nested', await signed({ apps: [], roles: { admin: 'entry-admin' } }), FORBIDDEN],
      ['denied app with apps *', await signed({ apps: ['*'] }), DENIED, denied],
      ['denied app named explicitly', await signed({ apps: ['entry'] }), DENIED, denied],
      ['denied app as admin', await signed({ apps: [], roles: ['entry-admin'] }), DENIED, denied],
    ];
    for (const [what, token, e, target] of cases) {
      for (const way of WAYS) {
        // An empty Bearer or subprotocol token is no token at all on those ways.
        expectRefused(what, way, await attempt(way, token, target), e);
      }
    }
    expect(await execCreateCount(containerId, since), 'exec calls on the target container').toBe(0);
    expect(await execCreateCount(deniedContainerId, since), 'exec calls on the denied container').toBe(0);
    figures.execCalls = 0;
  }, 60_000);

  it('refuses a 1 MB token: HTTP 431 where it comes in a header, too large a message where it comes in one', async () => {
    const since = Date.now();
    // A signed-looking token of 1,000,000 bytes: under the default --max-frame (1 MiB), over
    // what web mode reads of a credentials message.
    const head = (await signed()).split('.').slice(0, 2).join('.');
    const huge = `${head}.${'A'.repeat(1_000_000 - head.length - 1)}`;
    expect(huge.length).toBe(1_000_000);
    const seen: string[] = [];
    for (const way of ['access-token', 'bearer', 'subprotocol', 'api'] as const) {
      const o = await attempt(way, huge);
      // Headers over Node's limit never reach the broker's code: the upgrade fails with 431.
      expect(o, `1 MB token via ${way}`).toMatchObject({ kind: 'http', status: 431 });
      seen.push(`${way}:${o.status}`);
      figures.refused++;
    }
    // Web mode carries it in the first message: over what a credentials message may be, it is
    // refused before it is read whole.
    const o = await attempt('web', huge);
    expectRefused('1 MB token', 'web', o, { code: 'ENTRY_FRAME_TOO_LARGE', close: 1009, line: /the credentials message is over 65536 bytes/, http: 413 });
    seen.push(`web:${o.closeCode}`);
    figures.oversizeOutcome = seen.join(',');
    expect(await execCreateCount(containerId, since)).toBe(0);
    expect(await healthz(b.url)).toBe(200);
  });

  it('counts failures per source and refuses before verifying once over the limit', async () => {
    const dir = mkdtempSync(join(root, 'keys-'));
    const keyFile = join(dir, 'rsa.pub.pem');
    writeFileSync(keyFile, publicPem);
    const limited = await startTestBroker({ 'jwt-public-key': keyFile, issuer: ISSUER, audience: AUDIENCE, 'auth-failure-limit': 5 });
    try {
      const since = Date.now();
      const codes: string[] = [];
      for (let i = 0; i < 8; i++) {
        figures.attempts++;
        const c = await WireClient.connect(limited.wsUrl, { authorization: `Bearer garbage${i}`, 'entry-protocol': '2', 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
        await c.closed;
        codes.push(c.closeMessage()?.code ?? '');
        figures.refused++;
      }
      expect(codes.slice(0, 5)).toEqual(Array(5).fill('ENTRY_BAD_TOKEN'));
      expect(codes.slice(5)).toEqual(Array(3).fill('ENTRY_RATE_LIMITED'));
      // Once limited, even a valid token from the same source waits for the window.
      const c = await WireClient.connect(limited.wsUrl, { authorization: `Bearer ${await signed()}`, 'entry-protocol': '2', 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
      const closed = await c.closed;
      expect(closed.code).toBe(4429);
      expect(await execCreateCount(containerId, since)).toBe(0);
    } finally {
      await limited.stop();
    }
  });

  it('positive control: a valid token creates an exec, and the tolerance admits small skew', async () => {
    const since = Date.now();
    for (const token of [await signed(), await signed({ nbf: now() + 10 }), await signed({ exp: now() - 10 }), await signed({ aud: ['x', AUDIENCE] })]) {
      await timedEcho(b.wsUrl, token, { app, proc: 'web', instance: 1 });
    }
    const admin = await signed({ apps: [], roles: ['entry-admin'] });
    await timedEcho(b.wsUrl, admin, { app, proc: 'web', instance: 1 });
    figures.positiveExecCalls = await execCreateCount(containerId, since);
    expect(figures.positiveExecCalls).toBeGreaterThanOrEqual(5);
    // timedEcho insists on exactly "ok\n" from each of the five.
    figures.bytesLost = 0;
  });

  it('leaves nothing running in either container, and the broker healthy', async () => {
    // Only each container's own main process (the demo image's sleep loop) may be there.
    const own = (p: string) => p.startsWith('/bin/sh -c trap') || p === 'sleep 3600';
    const extra = [...(await containerProcesses(containerId)), ...(await containerProcesses(deniedContainerId))].filter((p) => !own(p));
    figures.leaked = extra.length;
    expect(extra).toEqual([]);
    expect(await healthz(b.url)).toBe(200);
  });
});
