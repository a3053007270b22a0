import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeResumeTicket, encodeExecSpec, encodeRequest, encodeResumeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { WireClient } from '../helpers/wire-client.js';

describe('a session resumed with another token', () => {
  const containers = new TestContainers();
  const app = uniqueApp('resume-token');
  let b: TestBroker;
  let proxy: TcpProxy;
  let containerId = '';

  beforeAll(async () => {
    b = await startTestBroker({ 'kill-grace': '300' });
    proxy = new TcpProxy(b.url);
    await proxy.start();
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  const tokenWithJti = (jti: string) => new SignJWT({ apps: [app] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('rosa').setJti(jti).setIssuedAt().setExpirationTime('1h').sign(b.privateKey);
  const headers = (token: string) => ({ 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1', 'entry-protocol': '2' });

  it("ends when the token it was resumed with is revoked, that token being the session's from then on", async () => {
    const owner = await WireClient.connect(`${proxy.url.replace('http', 'ws')}/enter`, headers(await tokenWithJti('rosa-first')));
    owner.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: ['sh', '-c', 'echo up; sleep 1041'].map((a) => Buffer.from(a)), resumable: true })));
    await owner.waitFor(() => owner.stdoutText() === 'up\n', 'the session');
    const ticket = decodeResumeTicket(owner.messages.find((m) => m.msgType === ResponseType.RESUMABLE)!.content);
    proxy.cut();
    await owner.closed;
    const resumed = await WireClient.connect(b.wsUrl, { ...headers(await tokenWithJti('rosa-second')), 'entry-resume': ticket.session });
    resumed.ws.send(encodeRequest(RequestType.RESUME, encodeResumeRequest({ token: ticket.token, outputOffset: 3 })));
    await resumed.waitFor(() => resumed.messages.some((m) => m.msgType === ResponseType.RESUMABLE), 'the resume');
    const admin = await b.mint({ roles: ['entry-admin'] }, { user: 'boss' });
    const res = await fetch(`${b.url}/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ jti: 'rosa-second' }) });
    expect(res.status).toBe(204);
    const closed = await Promise.race([resumed.closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 5_000))]);
    expect(closed, 'the session to end').toBe(true);
    expect(resumed.closeMessage()).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    await eventually(async () => (await containerProcesses(containerId)).every((p) => !p.includes('sleep 1041')), 'the process to be gone');
  });
});
