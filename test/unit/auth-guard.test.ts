import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthGuard, type Credential } from '../../broker/auth/guard.js';
import { Tickets } from '../../broker/auth/tickets.js';
import { loadVerificationKey } from '../../broker/auth/keys.js';
import { TokenVerifier } from '../../broker/auth/verifier.js';
import { parseConfig } from '../../broker/config/config.js';
import { MemoryStore } from '../../broker/store/memory-store.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-guard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const trusted = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const keyFile = join(dir, 'jwt.pub.pem');
writeFileSync(keyFile, trusted.publicKey.export({ type: 'spki', format: 'pem' }));
const auth = parseConfig({ 'jwt-public-key': keyFile }).auth;

const LIMIT = 3;

interface Told {
  code: string | undefined;
  source: string;
  user: string | undefined;
  via: Credential;
  repeat: boolean;
}

function guard(store = new MemoryStore()): { guard: AuthGuard; store: MemoryStore; told: Told[] } {
  const told: Told[] = [];
  const onFailure = (err: unknown, source: string, user: string | undefined, via: Credential, repeat: boolean) => told.push({ code: (err as { code?: string }).code, source, user, via, repeat });
  return { guard: new AuthGuard(new TokenVerifier(loadVerificationKey(auth), auth), store, { authFailureLimit: LIMIT, authFailureWindowMs: 60_000 }, onFailure), store, told };
}

const sign = (user: string, key: KeyObject = trusted.privateKey, expiresIn: string | number = '1h') =>
  new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject(user).setIssuedAt().setExpirationTime(expiresIn).sign(key);

const unsigned = (user: string) => {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none' })}.${part({ sub: user, exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
};

/** Each attempt from a network of its own, as an attacker with many networks would. */
let n = 0;
const freshSource = () => `2001:db8:${(n++).toString(16)}::1`;

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'accepted';
};

describe('AuthGuard counting failed authentications', () => {
  it('never refuses a valid token because others sent forged tokens naming its user', async () => {
    const { guard: g } = guard();
    for (let i = 0; i < LIMIT * 3; i++) {
      expect(await refusal(g.authenticate(unsigned('victim'), freshSource()))).toBe('ENTRY_BAD_TOKEN');
      expect(await refusal(g.authenticate(await sign('victim', stranger.privateKey), freshSource()))).toBe('ENTRY_BAD_TOKEN');
    }
    expect((await g.authenticate(await sign('victim'), freshSource())).user).toBe('victim');
  });

  it('still refuses an address that keeps failing, whatever token it then sends', async () => {
    const { guard: g } = guard();
    const source = freshSource();
    for (let i = 0; i < LIMIT; i++) expect(await refusal(g.authenticate('junk', source))).toBe('ENTRY_BAD_TOKEN');
    expect(await refusal(g.authenticate(await sign('alice'), source))).toBe('ENTRY_RATE_LIMITED');
    expect((await g.authenticate(await sign('alice'), freshSource())).user).toBe('alice');
  });

  it('counts every address of an IPv6 /64 as one source, and the next /64 apart', async () => {
    const { guard: g, told } = guard();
    for (let i = 0; i < LIMIT; i++) expect(await refusal(g.authenticate('junk', `2001:db8:ffff:0:${i + 1}:0:0:7`))).toBe('ENTRY_BAD_TOKEN');
    expect(await refusal(g.authenticate(await sign('alice'), '2001:db8:ffff::ffff:1'))).toBe('ENTRY_RATE_LIMITED');
    // Audited under the address it came from, not its network.
    expect(told.at(-1)).toMatchObject({ code: 'ENTRY_RATE_LIMITED', source: '2001:db8:ffff::ffff:1', repeat: false });
    expect((await g.authenticate(await sign('alice'), '2001:db8:ffff:1::1')).user).toBe('alice');
  });

  it('counts IPv4 addresses one by one', async () => {
    const { guard: g } = guard();
    for (let i = 0; i < LIMIT; i++) expect(await refusal(g.authenticate('junk', '192.0.2.1'))).toBe('ENTRY_BAD_TOKEN');
    expect(await refusal(g.authenticate(await sign('alice'), '192.0.2.1'))).toBe('ENTRY_RATE_LIMITED');
    expect((await g.authenticate(await sign('alice'), '192.0.2.2')).user).toBe('alice');
  });

  it('tells the first refusal of an address over its limit as new, and the ones after it within the wait as repeats', async () => {
    const { guard: g, told } = guard();
    const source = freshSource();
    const other = freshSource();
    for (let i = 0; i < LIMIT; i++) await refusal(g.authenticate('junk', source));
    for (let i = 0; i < LIMIT; i++) await refusal(g.authenticate('junk', other));
    for (let i = 0; i < 5; i++) expect(await refusal(g.authenticate('junk', source))).toBe('ENTRY_RATE_LIMITED');
    expect(await refusal(g.authenticate('junk', other))).toBe('ENTRY_RATE_LIMITED');
    const limited = told.filter((t) => t.code === 'ENTRY_RATE_LIMITED').map((t) => t.repeat);
    // Five from the first address (the first new), then the other address's first, new too.
    expect(limited).toEqual([false, true, true, true, true, false]);
    expect(told.filter((t) => t.code === 'ENTRY_BAD_TOKEN').every((t) => !t.repeat)).toBe(true);
  });

  it('refuses all but the limit of parallel bad tokens from one address, and holds back, never refuses, parallel good ones', async () => {
    const { guard: g } = guard();
    const source = freshSource();
    const good = await sign('gina');
    const admitted = await Promise.all(Array.from({ length: 50 }, () => refusal(g.authenticate(good, source))));
    expect(admitted.every((r) => r === 'accepted')).toBe(true);
    // Signed by a key the guard does not trust: each is checked as far as its signature, which takes a while.
    const forged = await sign('mallory', stranger.privateKey);
    const bad = await Promise.all(Array.from({ length: 200 }, (_, i) => refusal(g.authenticate(i % 2 ? forged : 'junk', source))));
    expect(bad.filter((r) => r === 'ENTRY_BAD_TOKEN')).toHaveLength(LIMIT);
    expect(bad.filter((r) => r === 'ENTRY_RATE_LIMITED')).toHaveLength(200 - LIMIT);
  });

  it('asks the store about parallel attempts a number of times that grows with them, not with their square', async () => {
    let peeks = 0;
    const store = new (class extends MemoryStore {
      override peek(...args: Parameters<MemoryStore['peek']>): ReturnType<MemoryStore['peek']> {
        peeks++;
        return super.peek(...args);
      }
    })();
    const { guard: g } = guard(store);
    const source = freshSource();
    // One failure short of the limit: parallel good tokens then go one at a time.
    for (let i = 0; i < LIMIT - 1; i++) expect(await refusal(g.authenticate('junk', source))).toBe('ENTRY_BAD_TOKEN');
    peeks = 0;
    const good = await sign('gina');
    const admitted = await Promise.all(Array.from({ length: 200 }, () => refusal(g.authenticate(good, source))));
    expect(admitted.every((r) => r === 'accepted')).toBe(true);
    // Each attempt asks once as it comes and once when woken in its turn: 2 × 200 at most.
    // Waking every waiter at each decision had them all ask again (597 here, with a store that
    // answers at once; one that answers slower, nearer 200 × 200 / 2).
    expect(peeks).toBeLessThanOrEqual(2 * 200);
  });

  it("admits a user's valid token however often others replay that user's expired or revoked tokens", async () => {
    const { guard: g, store } = guard();
    const expired = await sign('carol', trusted.privateKey, Math.floor(Date.now() / 1000) - 3600);
    const revoked = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setSubject('carol').setJti('leaked').setExpirationTime('1h').sign(trusted.privateKey);
    await store.revokeToken('leaked', Date.now() + 60_000);
    for (let i = 0; i < LIMIT * 3; i++) {
      expect(await refusal(g.authenticate(expired, freshSource()))).toBe('ENTRY_TOKEN_EXPIRED');
      expect(await refusal(g.authenticate(revoked, freshSource()))).toBe('ENTRY_TOKEN_REVOKED');
    }
    expect((await g.authenticate(await sign('carol'), freshSource())).user).toBe('carol');
  });

  it("counts a leaked token's replays against the address sending them", async () => {
    const { guard: g } = guard();
    const expired = await sign('erin', trusted.privateKey, Math.floor(Date.now() / 1000) - 3600);
    const source = freshSource();
    for (let i = 0; i < LIMIT; i++) expect(await refusal(g.authenticate(expired, source))).toBe('ENTRY_TOKEN_EXPIRED');
    expect(await refusal(g.authenticate(expired, source))).toBe('ENTRY_RATE_LIMITED');
    expect((await g.authenticate(await sign('erin'), freshSource())).user).toBe('erin');
  });

  it('counts unknown and misdirected tickets against the address, and refuses a limited address before its ticket is spent', async () => {
    const { guard: g, store, told } = guard();
    const tickets = new Tickets(store);
    const target = { app: 'shop', proc: 'web', instance: '1' };
    const alice = await g.authenticate(await sign('alice'), freshSource());
    const source = freshSource();
    const misdirected = (await tickets.issue(alice, target)).ticket;
    expect(await refusal(g.redeem(() => tickets.redeem('forged', target), source))).toBe('ENTRY_BAD_TOKEN');
    expect(await refusal(g.redeem(() => tickets.redeem(misdirected, { ...target, instance: '2' }), source))).toBe('ENTRY_BAD_TOKEN');
    expect(await refusal(g.redeem(() => tickets.redeem('forged-again', target), source))).toBe('ENTRY_BAD_TOKEN');
    const good = (await tickets.issue(alice, target)).ticket;
    expect(await refusal(g.redeem(() => tickets.redeem(good, target), source))).toBe('ENTRY_RATE_LIMITED');
    // Not spent by the refusal: it still opens from another address.
    expect((await g.redeem(() => tickets.redeem(good, target), freshSource())).user).toBe('alice');
    expect(told).toEqual([
      { code: 'ENTRY_BAD_TOKEN', source, user: undefined, via: 'ticket', repeat: false },
      { code: 'ENTRY_BAD_TOKEN', source, user: undefined, via: 'ticket', repeat: false },
      { code: 'ENTRY_BAD_TOKEN', source, user: undefined, via: 'ticket', repeat: false },
      { code: 'ENTRY_RATE_LIMITED', source, user: undefined, via: 'ticket', repeat: false },
    ]);
  });

  it("refuses a ticket whose token was revoked after it was issued, naming the ticket's user", async () => {
    const { guard: g, store, told } = guard();
    const tickets = new Tickets(store);
    const target = { app: 'shop', proc: 'web', instance: '1' };
    const token = await new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('dave').setJti('dave-1').setExpirationTime('1h').sign(trusted.privateKey);
    const { ticket } = await tickets.issue(await g.authenticate(token, freshSource()), target);
    await store.revokeToken('dave-1', Date.now() + 60_000);
    const source = freshSource();
    expect(await refusal(g.redeem(() => tickets.redeem(ticket, target), source))).toBe('ENTRY_TOKEN_REVOKED');
    expect(told).toEqual([{ code: 'ENTRY_TOKEN_REVOKED', source, user: 'dave', via: 'ticket', repeat: false }]);
  });

  it('refuses a token without iat once its user is revoked, saying that it has no issue time', async () => {
    const { guard: g, store } = guard();
    const noIat = await new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject('frank').setExpirationTime('1h').sign(trusted.privateKey);
    expect((await g.authenticate(noIat, freshSource())).user).toBe('frank');
    await store.revokeUserBefore('frank', Date.now() - 1_000);
    const refused = await g.authenticate(noIat, freshSource()).catch((err: unknown) => err as { code: string; message: string });
    expect(refused).toMatchObject({ code: 'ENTRY_TOKEN_REVOKED' });
    expect((refused as { message: string }).message).toBe('access token revoked: the token has no iat (issue time), so it cannot be told from the tokens of frank issued before their revocation: have the issuer set iat');
    // A token that carries its issue time, issued after the revocation, passes.
    expect((await g.authenticate(await sign('frank'), freshSource())).user).toBe('frank');
    // Revoked by its jti, a token without iat is refused as any other.
    const byJti = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setSubject('frank').setJti('f-1').setExpirationTime('1h').sign(trusted.privateKey);
    await store.revokeToken('f-1', Date.now() + 60_000);
    expect(await g.authenticate(byJti, freshSource()).catch((err: unknown) => (err as Error).message)).toBe('access token revoked');
  });
});
