import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../broker/auth/identity.js';
import { VerifiedTokens } from '../../broker/auth/verified-tokens.js';
import { TokenVerifier } from '../../broker/auth/verifier.js';
import { parseConfig } from '../../broker/config/config.js';
import { EntryError } from '../../broker/errors.js';

const T0 = 1_900_000_000_000;

function identity(user: string, expiresAt: number): Identity {
  return { user, apps: ['shop'], roles: ['dev'], admin: false, tokenId: undefined, issuedAt: 0, expiresAt };
}

describe('VerifiedTokens', () => {
  it('gives back the identity of the same token, and nothing for another', () => {
    const cache = new VerifiedTokens({ maxEntries: 8, ttlMs: 60_000, clockToleranceSec: 0 });
    cache.add('token-a', identity('alice', T0 + 3_600_000), T0);
    expect(cache.get('token-a', T0 + 1)?.user).toBe('alice');
    expect(cache.get('token-b', T0 + 1)).toBeUndefined();
    expect(cache.get('token-a\n', T0 + 1)).toBeUndefined();
  });

  it('stops using an entry when the token expires, counting the clock tolerance', () => {
    const cache = new VerifiedTokens({ maxEntries: 8, ttlMs: 60_000, clockToleranceSec: 5 });
    cache.add('t', identity('alice', T0 + 10_000), T0);
    expect(cache.get('t', T0 + 14_999)?.user).toBe('alice');
    expect(cache.get('t', T0 + 15_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('stops using an entry after its time to live, however far off the expiry is', () => {
    const cache = new VerifiedTokens({ maxEntries: 8, ttlMs: 60_000, clockToleranceSec: 0 });
    cache.add('t', identity('alice', T0 + 3_600_000), T0);
    expect(cache.get('t', T0 + 59_999)).toBeDefined();
    expect(cache.get('t', T0 + 60_000)).toBeUndefined();
  });

  it('keeps no token that has already expired', () => {
    const cache = new VerifiedTokens({ maxEntries: 8, ttlMs: 60_000, clockToleranceSec: 0 });
    cache.add('t', identity('alice', T0 - 1), T0);
    expect(cache.size).toBe(0);
  });

  it('holds at most maxEntries, dropping the oldest first', () => {
    const cache = new VerifiedTokens({ maxEntries: 3, ttlMs: 60_000, clockToleranceSec: 0 });
    for (const t of ['a', 'b', 'c', 'd']) cache.add(t, identity(t, T0 + 3_600_000), T0);
    expect(cache.size).toBe(3);
    expect(cache.get('a', T0)).toBeUndefined();
    expect(cache.get('d', T0)?.user).toBe('d');
  });

  it('keeps nothing when maxEntries is 0', () => {
    const cache = new VerifiedTokens({ maxEntries: 0, ttlMs: 60_000, clockToleranceSec: 0 });
    cache.add('t', identity('alice', T0 + 3_600_000), T0);
    expect(cache.get('t', T0)).toBeUndefined();
  });

  it('hands out copies: a caller changing its identity does not change the next one', () => {
    const cache = new VerifiedTokens({ maxEntries: 8, ttlMs: 60_000, clockToleranceSec: 0 });
    cache.add('t', identity('alice', T0 + 3_600_000), T0);
    const first = cache.get('t', T0)!;
    first.apps.push('*');
    first.admin = true;
    const second = cache.get('t', T0)!;
    expect(second.apps).toEqual(['shop']);
    expect(second.admin).toBe(false);
  });
});

describe('TokenVerifier with verified tokens remembered', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const auth = parseConfig({ 'jwt-public-key': '/unused' }).auth;

  /** A verifier whose key is a function, to count how often a signature is checked. */
  function countingVerifier(cache?: { maxEntries: number; ttlMs: number }): { verifier: TokenVerifier; keyLookups: () => number } {
    let lookups = 0;
    const key = async () => {
      lookups++;
      return publicKey;
    };
    const verifier = new TokenVerifier({ key, algorithms: ['EdDSA'] }, auth, cache);
    return { verifier, keyLookups: () => lookups };
  }

  const mint = (expiresAt: number) =>
    new SignJWT({ sub: 'alice', apps: ['shop'] })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(privateKey);

  it('checks the signature of a token once, then answers from memory', async () => {
    const { verifier, keyLookups } = countingVerifier();
    const token = await mint(Date.now() + 300_000);
    expect((await verifier.verify(token)).user).toBe('alice');
    expect((await verifier.verify(token)).user).toBe('alice');
    expect(keyLookups()).toBe(1);
  });

  it('still refuses a forged token after the genuine one was remembered', async () => {
    const { verifier } = countingVerifier();
    const token = await mint(Date.now() + 300_000);
    await verifier.verify(token);
    const [header, payload, signature] = token.split('.');
    const elevated = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), apps: ['*'] })).toString('base64url');
    await expect(verifier.verify(`${header}.${elevated}.${signature}`)).rejects.toMatchObject({ code: 'ENTRY_BAD_TOKEN' });
  });

  it('remembers no refused token: an expired one is refused every time, with the reason', async () => {
    const { verifier, keyLookups } = countingVerifier();
    const token = await mint(Date.now() - 120_000);
    for (let i = 0; i < 2; i++) {
      const err = await verifier.verify(token).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EntryError);
      expect((err as EntryError).code).toBe('ENTRY_TOKEN_EXPIRED');
    }
    expect(keyLookups()).toBe(2);
  });

  it('checks every time when remembering is off', async () => {
    const { verifier, keyLookups } = countingVerifier({ maxEntries: 0, ttlMs: 60_000 });
    const token = await mint(Date.now() + 300_000);
    await verifier.verify(token);
    await verifier.verify(token);
    expect(keyLookups()).toBe(2);
  });
});
