import { createSecretKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { algorithmsForPublicKey, loadVerificationKey } from '../../broker/auth/keys.js';
import { MAX_TOKEN_LENGTH, TokenVerifier } from '../../broker/auth/verifier.js';
import { ConfigError, parseConfig, type RawSettings } from '../../broker/config/config.js';
import { EntryError } from '../../broker/errors.js';
import { configErrorOf } from '../helpers/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeTemp(name: string, content: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
// Ends in a letter: the loader drops a trailing newline, which random bytes would hit 2 times in 256.
const secret = Buffer.concat([randomBytes(47), Buffer.from('k')]);

const rsaPemPath = writeTemp('rsa.pem', pem(rsa.publicKey));
const ecPemPath = writeTemp('ec.pem', pem(ec.publicKey));
const edPemPath = writeTemp('ed.pem', pem(ed.publicKey));
const secretPath = writeTemp('secret', secret);

function verifierFor(settings: RawSettings): TokenVerifier {
  const auth = parseConfig(settings).auth;
  return new TokenVerifier(loadVerificationKey(auth), auth);
}

const now = () => Math.floor(Date.now() / 1000);

interface MintOptions {
  alg: string;
  key: KeyObject | Uint8Array;
  payload?: JWTPayload;
  /** Seconds from now; null: no exp claim. */
  expiresIn?: number | null;
}

async function mint({ alg, key, payload = {}, expiresIn = 300 }: MintOptions): Promise<string> {
  const jwt = new SignJWT({ sub: 'alice', apps: ['shop-*'], roles: ['dev'], ...payload }).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(typeof payload['iat'] === 'number' ? payload['iat'] : undefined);
  if (expiresIn !== null) jwt.setExpirationTime(now() + expiresIn);
  return jwt.sign(key);
}

async function refusal(verifier: TokenVerifier, token: string | undefined): Promise<EntryError> {
  try {
    await verifier.verify(token);
  } catch (err) {
    expect(err).toBeInstanceOf(EntryError);
    return err as EntryError;
  }
  return expect.unreachable('the token was accepted');
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('TokenVerifier accepting valid tokens', () => {
  it('accepts RS256 and returns the identity from sub, apps and roles', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath });
    const token = await mint({ alg: 'RS256', key: rsa.privateKey, payload: { jti: 'tok-1' } });
    const identity = await verifier.verify(token);
    expect(identity.user).toBe('alice');
    expect(identity.apps).toEqual(['shop-*']);
    expect(identity.roles).toEqual(['dev']);
    expect(identity.admin).toBe(false);
    expect(identity.tokenId).toBe('tok-1');
    expect(Math.abs(identity.expiresAt - (now() + 300) * 1000)).toBeLessThanOrEqual(2000);
  });

  it('accepts PS256 with the same RSA key', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath });
    expect((await verifier.verify(await mint({ alg: 'PS256', key: rsa.privateKey }))).user).toBe('alice');
  });

  it('accepts ES256 with a P-256 key', async () => {
    const verifier = verifierFor({ 'jwt-public-key': ecPemPath });
    expect((await verifier.verify(await mint({ alg: 'ES256', key: ec.privateKey }))).user).toBe('alice');
  });

  it('accepts EdDSA with an Ed25519 key', async () => {
    const verifier = verifierFor({ 'jwt-public-key': edPemPath });
    expect((await verifier.verify(await mint({ alg: 'EdDSA', key: ed.privateKey }))).user).toBe('alice');
  });

  it('accepts HS256 with the secret file', async () => {
    const verifier = verifierFor({ 'jwt-secret-file': secretPath });
    expect((await verifier.verify(await mint({ alg: 'HS256', key: secret }))).user).toBe('alice');
  });

  it('makes the holder of entry-admin an admin', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath });
    const token = await mint({ alg: 'RS256', key: rsa.privateKey, payload: { roles: ['dev', 'entry-admin'] } });
    const identity = await verifier.verify(token);
    expect(identity.admin).toBe(true);
    expect(identity.tokenId).toBeUndefined();
  });

  it('reads a single string as a list of one and ignores non-strings in lists', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath });
    const token = await mint({ alg: 'RS256', key: rsa.privateKey, payload: { apps: 'blog', roles: ['x', 7, null, 'entry-admin'] } });
    const identity = await verifier.verify(token);
    expect(identity.apps).toEqual(['blog']);
    expect(identity.roles).toEqual(['x', 'entry-admin']);
    expect(identity.admin).toBe(true);
  });

  it('gives no apps and no admin when the claims are missing', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath });
    const token = await mint({ alg: 'RS256', key: rsa.privateKey, payload: { apps: undefined, roles: undefined } });
    const identity = await verifier.verify(token);
    expect(identity.apps).toEqual([]);
    expect(identity.roles).toEqual([]);
    expect(identity.admin).toBe(false);
  });

  it('reads configured claim paths such as realm_access.roles (Keycloak) and groups', async () => {
    const verifier = verifierFor({
      'jwt-public-key': rsaPemPath,
      'user-claim': 'preferred_username',
      'apps-claim': 'groups',
      'roles-claim': 'realm_access.roles',
      'admin-role': 'ops',
    });
    const token = await mint({
      alg: 'RS256',
      key: rsa.privateKey,
      payload: { sub: 'f81d4fae', preferred_username: 'bob', groups: ['blog'], realm_access: { roles: ['ops'] }, roles: ['entry-admin'] },
    });
    const identity = await verifier.verify(token);
    expect(identity.user).toBe('bob');
    expect(identity.apps).toEqual(['blog']);
    expect(identity.roles).toEqual(['ops']);
    expect(identity.admin).toBe(true);
  });

  it('accepts a token expired by less than the clock tolerance', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath, 'clock-tolerance': 30 });
    expect((await verifier.verify(await mint({ alg: 'RS256', key: rsa.privateKey, expiresIn: -5 }))).user).toBe('alice');
  });

  it('accepts the configured issuer and audience', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath, issuer: 'https://idp.example', audience: 'entry' });
    const token = await mint({ alg: 'RS256', key: rsa.privateKey, payload: { iss: 'https://idp.example', aud: ['other', 'entry'] } });
    expect((await verifier.verify(token)).user).toBe('alice');
  });
});

describe('TokenVerifier refusing tokens', () => {
  const rsaVerifier = verifierFor({ 'jwt-public-key': rsaPemPath });

  it('refuses a missing token with ENTRY_NO_TOKEN', async () => {
    expect((await refusal(rsaVerifier, undefined)).code).toBe('ENTRY_NO_TOKEN');
    expect((await refusal(rsaVerifier, '')).code).toBe('ENTRY_NO_TOKEN');
  });

  it('refuses garbage with ENTRY_BAD_TOKEN', async () => {
    // The start of any encoded JSON object, cut short.
    const jsonStart = b64url({ a: 1 }).slice(0, 3);
    for (const garbage of ['abc', 'a.b.c', '...', `${jsonStart}.${jsonStart}.`, `${b64url({ alg: 'RS256' })}.!!!.x`]) {
      const err = await refusal(rsaVerifier, garbage);
      expect(err.code).toBe('ENTRY_BAD_TOKEN');
      expect(err.status).toBe(401);
    }
  });

  it('refuses an over-long token with ENTRY_BAD_TOKEN before parsing it', async () => {
    expect((await refusal(rsaVerifier, 'a'.repeat(MAX_TOKEN_LENGTH + 1))).code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses a token signed by another key', async () => {
    const err = await refusal(rsaVerifier, await mint({ alg: 'RS256', key: otherRsa.privateKey }));
    expect(err.code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses a token whose payload was changed after signing', async () => {
    const token = await mint({ alg: 'RS256', key: rsa.privateKey });
    const [header, , signature] = token.split('.');
    const forged = `${header}.${b64url({ sub: 'alice', apps: ['*'], exp: now() + 300 })}.${signature}`;
    expect((await refusal(rsaVerifier, forged)).code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses an expired token with ENTRY_TOKEN_EXPIRED', async () => {
    const err = await refusal(rsaVerifier, await mint({ alg: 'RS256', key: rsa.privateKey, expiresIn: -3600 }));
    expect(err.code).toBe('ENTRY_TOKEN_EXPIRED');
  });

  it('refuses a token without exp', async () => {
    const err = await refusal(rsaVerifier, await mint({ alg: 'RS256', key: rsa.privateKey, expiresIn: null }));
    expect(err.code).toBe('ENTRY_BAD_TOKEN');
    expect(err.message).toContain('exp');
  });

  it('refuses a token that is not valid yet', async () => {
    const err = await refusal(rsaVerifier, await mint({ alg: 'RS256', key: rsa.privateKey, payload: { nbf: now() + 3600 } }));
    expect(err.code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses a token issued in the future beyond the clock tolerance, which a revocation by issue time would miss', async () => {
    const err = await refusal(rsaVerifier, await mint({ alg: 'RS256', key: rsa.privateKey, payload: { iat: now() + 3600 } }));
    expect(err.code).toBe('ENTRY_BAD_TOKEN');
    expect(err.message).toContain('issued in the future');
    const tolerant = verifierFor({ 'jwt-public-key': rsaPemPath, 'clock-tolerance': 30 });
    expect((await tolerant.verify(await mint({ alg: 'RS256', key: rsa.privateKey, payload: { iat: now() + 10 } }))).user).toBe('alice');
  });

  it('refuses a token without a user', async () => {
    const err = await refusal(rsaVerifier, await mint({ alg: 'RS256', key: rsa.privateKey, payload: { sub: undefined } }));
    expect(err.code).toBe('ENTRY_BAD_TOKEN');
    expect(err.message).toContain('sub');
  });

  it('refuses an unsigned alg:none token', async () => {
    const payload = { sub: 'alice', apps: ['*'], roles: ['entry-admin'], exp: now() + 300 };
    for (const alg of ['none', 'None', 'NONE']) {
      for (const signature of ['', 'x']) {
        const token = `${b64url({ alg, typ: 'JWT' })}.${b64url(payload)}.${signature}`;
        expect((await refusal(rsaVerifier, token)).code).toBe('ENTRY_BAD_TOKEN');
      }
    }
    const hmacVerifier = verifierFor({ 'jwt-secret-file': secretPath });
    expect((await refusal(hmacVerifier, `${b64url({ alg: 'none' })}.${b64url(payload)}.`)).code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses an HS256 token signed with the RSA public key PEM as the HMAC secret (algorithm confusion)', async () => {
    const pemBytes = new TextEncoder().encode(pem(rsa.publicKey));
    for (const key of [pemBytes, createSecretKey(Buffer.from(pemBytes))]) {
      const token = await mint({ alg: 'HS256', key, payload: { apps: ['*'], roles: ['entry-admin'] } });
      expect((await refusal(rsaVerifier, token)).code).toBe('ENTRY_BAD_TOKEN');
    }
  });

  it('refuses an algorithm that does not belong to the configured key type', async () => {
    expect((await refusal(rsaVerifier, await mint({ alg: 'ES256', key: ec.privateKey }))).code).toBe('ENTRY_BAD_TOKEN');
    const hmacVerifier = verifierFor({ 'jwt-secret-file': secretPath });
    expect((await refusal(hmacVerifier, await mint({ alg: 'RS256', key: rsa.privateKey }))).code).toBe('ENTRY_BAD_TOKEN');
    const ecVerifier = verifierFor({ 'jwt-public-key': ecPemPath });
    expect((await refusal(ecVerifier, await mint({ alg: 'EdDSA', key: ed.privateKey }))).code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses a wrong or missing issuer when one is configured', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath, issuer: 'https://idp.example' });
    expect((await refusal(verifier, await mint({ alg: 'RS256', key: rsa.privateKey, payload: { iss: 'https://evil.example' } }))).code).toBe('ENTRY_BAD_TOKEN');
    expect((await refusal(verifier, await mint({ alg: 'RS256', key: rsa.privateKey }))).code).toBe('ENTRY_BAD_TOKEN');
  });

  it('refuses a wrong or missing audience when one is configured', async () => {
    const verifier = verifierFor({ 'jwt-public-key': rsaPemPath, audience: 'entry' });
    expect((await refusal(verifier, await mint({ alg: 'RS256', key: rsa.privateKey, payload: { aud: 'other' } }))).code).toBe('ENTRY_BAD_TOKEN');
    expect((await refusal(verifier, await mint({ alg: 'RS256', key: rsa.privateKey }))).code).toBe('ENTRY_BAD_TOKEN');
  });
});

describe('loadVerificationKey', () => {
  const configError = (settings: RawSettings): ConfigError => configErrorOf(() => loadVerificationKey(parseConfig(settings).auth), 'the key was accepted');

  it('allows only the algorithms of the key type', () => {
    expect(loadVerificationKey(parseConfig({ 'jwt-public-key': rsaPemPath }).auth).algorithms).toEqual(expect.arrayContaining(['RS256', 'PS256']));
    expect(loadVerificationKey(parseConfig({ 'jwt-public-key': ecPemPath }).auth).algorithms).toEqual(['ES256']);
    expect(loadVerificationKey(parseConfig({ 'jwt-public-key': edPemPath }).auth).algorithms).toContain('EdDSA');
    expect(loadVerificationKey(parseConfig({ 'jwt-secret-file': secretPath }).auth).algorithms).toEqual(['HS256', 'HS384', 'HS512']);
    for (const path of [rsaPemPath, ecPemPath, edPemPath]) {
      const algs = loadVerificationKey(parseConfig({ 'jwt-public-key': path }).auth).algorithms;
      expect(algs.some((a) => a.startsWith('HS') || a.toLowerCase() === 'none')).toBe(false);
    }
  });

  it('maps P-384 and P-521 keys to ES384 and ES512', () => {
    expect(algorithmsForPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey)).toEqual(['ES384']);
    expect(algorithmsForPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey)).toEqual(['ES512']);
  });

  it('never allows HMAC from a JWKS URL', () => {
    const key = loadVerificationKey(parseConfig({ 'jwks-url': 'https://idp.example/jwks' }).auth);
    expect(typeof key.key).toBe('function');
    expect(key.algorithms.some((a) => a.startsWith('HS'))).toBe(false);
  });

  it('refuses a secret file shorter than 32 bytes with a ConfigError naming --jwt-secret-file', () => {
    const err = configError({ 'jwt-secret-file': writeTemp('short', 'x'.repeat(31)) });
    expect(err.setting).toBe('--jwt-secret-file');
    expect(err.message).toContain('31 bytes');
  });

  it('does not count a trailing newline as part of the secret', () => {
    expect(configError({ 'jwt-secret-file': writeTemp('short-nl', `${'x'.repeat(31)}\n`) }).setting).toBe('--jwt-secret-file');
    expect(loadVerificationKey(parseConfig({ 'jwt-secret-file': writeTemp('ok-nl', `${'x'.repeat(32)}\r\n`) }).auth).algorithms).toContain('HS256');
  });

  it('strips the newline before verifying, so `echo secret > file` works', async () => {
    const text = 'y'.repeat(40);
    const verifier = verifierFor({ 'jwt-secret-file': writeTemp('echoed', `${text}\n`) });
    const token = await mint({ alg: 'HS256', key: new TextEncoder().encode(text) });
    expect((await verifier.verify(token)).user).toBe('alice');
  });

  it('refuses a missing or unreadable key file, naming the setting', () => {
    expect(configError({ 'jwt-public-key': join(dir, 'missing.pem') }).setting).toBe('--jwt-public-key');
    expect(configError({ 'jwt-public-key': writeTemp('junk.pem', 'not a key') }).setting).toBe('--jwt-public-key');
    expect(configError({ 'jwt-secret-file': join(dir, 'missing-secret') }).setting).toBe('--jwt-secret-file');
  });

  it('refuses an EC key on an unsupported curve', () => {
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey;
    const err = configError({ 'jwt-public-key': writeTemp('k1.pem', pem(k1)) });
    expect(err.setting).toBe('--jwt-public-key');
    expect(err.message).toContain('secp256k1');
  });
});
