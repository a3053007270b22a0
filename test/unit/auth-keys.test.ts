import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { authWarnings, loadVerificationKey } from '../../broker/auth/keys.js';
import type { AuthConfig } from '../../broker/config/config.js';
import { makeCa } from '../helpers/certs.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const auth = (o: Partial<AuthConfig>): AuthConfig => ({ clockToleranceSec: 0, claims: { user: 'sub', apps: 'apps', roles: 'roles' }, adminRole: 'entry-admin', denyApps: [], ...o }) as AuthConfig;

describe('the verification key', () => {
  it('refuses a private key given as --jwt-public-key, and takes its public half', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const priv = join(dir, 'signing.pem');
    const pub = join(dir, 'verify.pem');
    writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    expect(() => loadVerificationKey(auth({ publicKeyFile: priv }))).toThrow(/^invalid setting --jwt-public-key: .*holds a private key: give the broker the public key only/);
    expect(loadVerificationKey(auth({ publicKeyFile: pub })).algorithms).toContain('EdDSA');
  });

  it('refuses a key given as --jwt-secret-file, as PEM, DER, base64 DER or JWK, and takes a secret', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const files: Array<[string, string | Buffer]> = [
      ['public.pem', publicKey.export({ type: 'spki', format: 'pem' })],
      ['rsa-public.pem', publicKey.export({ type: 'pkcs1', format: 'pem' })],
      ['private.pem', privateKey.export({ type: 'pkcs8', format: 'pem' })],
      ['public.der', publicKey.export({ type: 'spki', format: 'der' })],
      ['rsa-public.der', publicKey.export({ type: 'pkcs1', format: 'der' })],
      ['public.jwk', JSON.stringify(publicKey.export({ format: 'jwk' }))],
      // A realm page's "public key": the SPKI's base64 without the PEM lines.
      ['public.b64', `${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}\n`],
      ['public.b64url', publicKey.export({ type: 'spki', format: 'der' }).toString('base64url')],
      ['certificate.der', new X509Certificate(readFileSync(makeCa('Signer', mkdtempSync(join(dir, 'ca-'))).cert)).raw],
    ];
    for (const [name, content] of files) {
      const file = join(dir, name);
      writeFileSync(file, content);
      expect(() => loadVerificationKey(auth({ secretFile: file })), name).toThrow(/^invalid setting --jwt-secret-file: .*holds a key, not an HMAC secret: give a public key as --jwt-public-key/);
    }
    const secret = join(dir, 'hmac-secret');
    for (const text of [`${randomBytes(32).toString('base64')}\n`, randomBytes(48).toString('base64url'), randomBytes(32).toString('hex')]) {
      writeFileSync(secret, text);
      expect(loadVerificationKey(auth({ secretFile: secret })).algorithms).toEqual(['HS256', 'HS384', 'HS512']);
    }
  });

  it('warns of a key set without an audience or an issuer, and of a secret others can read', () => {
    expect(authWarnings(auth({ jwksUrl: 'https://idp.example/jwks', issuer: 'https://idp.example' }))).toEqual([expect.stringMatching(/^--jwks-url without --audience: tokens the provider issued for any of its clients are accepted/)]);
    expect(authWarnings(auth({ jwksUrl: 'https://idp.example/jwks', audience: 'entry' }))).toEqual([expect.stringMatching(/^--jwks-url without --issuer: a token from any issuer that signs with these keys is accepted/)]);
    expect(authWarnings(auth({ jwksUrl: 'https://idp.example/jwks', audience: 'entry', issuer: 'https://idp.example' }))).toEqual([]);
    const secret = join(dir, 'secret');
    writeFileSync(secret, randomBytes(32).toString('hex'));
    chmodSync(secret, 0o644);
    expect(authWarnings(auth({ secretFile: secret }))).toEqual([expect.stringMatching(/can be read by others \(mode 0644\).*chmod 600/)]);
    chmodSync(secret, 0o600);
    expect(authWarnings(auth({ secretFile: secret }))).toEqual([]);
  });
});
