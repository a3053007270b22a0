import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { AuthGuard } from '../../broker/auth/guard.js';
import { type KeySetLimits, remoteKeySet } from '../../broker/auth/remote-key-set.js';
import { TokenVerifier } from '../../broker/auth/verifier.js';
import { parseConfig } from '../../broker/config/config.js';
import { MemoryStore } from '../../broker/store/memory-store.js';

const { privateKey, publicKey } = await generateKeyPair('RS256');
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
/** A token of its own each time (the verifier remembers tokens it has verified). */
const sign = (kid = 'k1') => new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'RS256', kid }).setSubject('alice').setJti(randomUUID()).setExpirationTime('1h').sign(privateKey);

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A key server on loopback answering with `answer`; its URL. */
async function keyServer(answer: (res: ServerResponse, req: IncomingMessage) => void): Promise<URL> {
  const server = createServer((req, res) => answer(res, req));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`);
}

function verifier(url: URL, limits: Partial<KeySetLimits> = {}): TokenVerifier {
  const auth = parseConfig({ 'jwks-url': url.href }).auth;
  return new TokenVerifier({ key: remoteKeySet(url, { fetchTimeoutMs: 300, ...limits }), algorithms: ['RS256'] }, auth);
}

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: string; status?: number; message?: string };
    return { code: e.code, status: e.status, message: e.message };
  }
  return { code: 'accepted' };
};

describe('a JWKS key set that cannot be fetched', () => {
  it('is ENTRY_AUTH_UNAVAILABLE when the key server answers 500, not a bad token', async () => {
    const url = await keyServer((res) => res.writeHead(500).end('down for maintenance'));
    const r = await refusal(verifier(url).verify(await sign()));
    expect(r).toMatchObject({ code: 'ENTRY_AUTH_UNAVAILABLE', status: 503 });
    expect(r.message).toContain('Expected 200 OK');
  });

  it('is ENTRY_AUTH_UNAVAILABLE naming the refusal when nothing listens', async () => {
    const url = await keyServer(() => undefined);
    await new Promise((r) => servers.pop()!.close(r));
    const r = await refusal(verifier(url).verify(await sign()));
    expect(r).toMatchObject({ code: 'ENTRY_AUTH_UNAVAILABLE', status: 503 });
    expect(r.message).toContain('ECONNREFUSED');
  });

  it('is ENTRY_AUTH_UNAVAILABLE after the fetch timeout when the key server never answers', async () => {
    const url = await keyServer(() => undefined);
    const r = await refusal(verifier(url, { fetchTimeoutMs: 200 }).verify(await sign()));
    expect(r).toMatchObject({ code: 'ENTRY_AUTH_UNAVAILABLE', status: 503 });
    expect(r.message).toContain('no answer within 200 ms');
  });

  it('is ENTRY_AUTH_UNAVAILABLE when the answer is not a key set', async () => {
    const url = await keyServer((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"none"}'));
    expect(await refusal(verifier(url).verify(await sign()))).toMatchObject({ code: 'ENTRY_AUTH_UNAVAILABLE', message: expect.stringContaining('not a JSON Web Key Set') });
  });

  it('still refuses a token whose key the set does not hold as a bad token', async () => {
    const url = await keyServer((res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)));
    const v = verifier(url);
    expect((await v.verify(await sign())).user).toBe('alice');
    expect(await refusal(v.verify(await sign('k2')))).toMatchObject({ code: 'ENTRY_BAD_TOKEN', status: 401 });
  });

  it("does not count an outage against the source: once the key server is back, the source's good token is admitted", async () => {
    let up = false;
    const url = await keyServer((res) => (up ? res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)) : res.writeHead(503).end()));
    const limit = 3;
    const guard = new AuthGuard(verifier(url), new MemoryStore(), { authFailureLimit: limit, authFailureWindowMs: 60_000 });
    for (let i = 0; i < limit * 2; i++) expect((await refusal(guard.authenticate(await sign(), '192.0.2.9'))).code).toBe('ENTRY_AUTH_UNAVAILABLE');
    up = true;
    expect((await guard.authenticate(await sign(), '192.0.2.9')).user).toBe('alice');
  });

  describe('after a key set was fetched', () => {
    /** A key server that can be taken down; how many fetches it was asked. */
    async function flakyKeyServer() {
      const state = { up: true, asked: 0 };
      const url = await keyServer((res) => {
        state.asked++;
        if (state.up) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
        else res.writeHead(503).end();
      });
      return { url, state };
    }
    const aged = (ms: number) => new Promise((r) => setTimeout(r, ms + 20));

    it('admits tokens of a key it holds while the key server is down, asking it again only after the cooldown', async () => {
      const { url, state } = await flakyKeyServer();
      const v = verifier(url, { cacheMaxAgeMs: 50, refetchCooldownMs: 60_000 });
      expect((await v.verify(await sign())).user).toBe('alice');
      state.up = false;
      await aged(50);
      expect((await v.verify(await sign())).user).toBe('alice');
      expect((await v.verify(await sign())).user).toBe('alice');
      // One fetch for the set, one that failed; none for the last token.
      expect(state.asked).toBe(2);
      const r = await refusal(v.verify(await sign('k2')));
      expect(r).toMatchObject({ code: 'ENTRY_AUTH_UNAVAILABLE', status: 503 });
      expect(r.message).toContain('the last one fetched has no key for this token');
      expect(state.asked).toBe(2);
    });

    it('stops trusting the last set fetched once it is older than the stale limit', async () => {
      const { url, state } = await flakyKeyServer();
      const v = verifier(url, { cacheMaxAgeMs: 50, staleMaxMs: 100 });
      expect((await v.verify(await sign())).user).toBe('alice');
      state.up = false;
      await aged(100);
      expect(await refusal(v.verify(await sign()))).toMatchObject({ code: 'ENTRY_AUTH_UNAVAILABLE', status: 503 });
    });

    it('takes a key withdrawn from the set away at the first fetch that succeeds', async () => {
      const { url, state } = await flakyKeyServer();
      const v = verifier(url, { cacheMaxAgeMs: 50 });
      expect((await v.verify(await sign())).user).toBe('alice');
      jwks.keys[0]!.kid = 'k0';
      await aged(50);
      try {
        expect(await refusal(v.verify(await sign()))).toMatchObject({ code: 'ENTRY_BAD_TOKEN', status: 401 });
        expect(state.asked).toBe(2);
      } finally {
        jwks.keys[0]!.kid = 'k1';
      }
    });
  });
});
