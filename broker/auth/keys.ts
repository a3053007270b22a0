import { createPublicKey, createSecretKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { JWTVerifyGetKey } from 'jose';
import { ConfigError, type AuthConfig } from '../config/config.js';
import { remoteKeySet } from './remote-key-set.js';

/** A verification key with the only algorithms it may be used with (no `none`, no HS/RS confusion). */
export interface VerificationKey {
  key: KeyObject | JWTVerifyGetKey;
  algorithms: string[];
}

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALGS: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
const HMAC_ALGS = ['HS256', 'HS384', 'HS512'];
/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output (32 bytes for HS256). */
const MIN_HMAC_SECRET_BYTES = 32;

export function algorithmsForPublicKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return RSA_ALGS;
    case 'ec': {
      const alg = EC_ALGS[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (!alg) throw new Error(`unsupported EC curve ${key.asymmetricKeyDetails?.namedCurve}`);
      return [alg];
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
  }
}

export function loadVerificationKey(auth: AuthConfig): VerificationKey {
  if (auth.publicKeyFile) {
    let key: KeyObject;
    let pem: Buffer;
    try {
      pem = readFileSync(auth.publicKeyFile);
      key = createPublicKey(pem);
    } catch (err) {
      throw new ConfigError('--jwt-public-key', `cannot load ${auth.publicKeyFile}: ${(err as Error).message}`);
    }
    // Node takes a private key for its public half: the signing key would sit on the broker.
    if (pem.includes('PRIVATE KEY')) {
      throw new ConfigError('--jwt-public-key', `${auth.publicKeyFile} holds a private key: give the broker the public key only (openssl pkey -in KEY -pubout)`);
    }
    try {
      return { key, algorithms: algorithmsForPublicKey(key) };
    } catch (err) {
      throw new ConfigError('--jwt-public-key', (err as Error).message);
    }
  }
  if (auth.secretFile) {
    let secret: Buffer;
    try {
      secret = readFileSync(auth.secretFile);
    } catch (err) {
      throw new ConfigError('--jwt-secret-file', `cannot read ${auth.secretFile}: ${(err as Error).message}`);
    }
    // A trailing newline from `echo secret > file` is not part of the secret.
    let end = secret.length;
    while (end > 0 && (secret[end - 1] === 0x0a || secret[end - 1] === 0x0d)) end--;
    secret = secret.subarray(0, end);
    // A public key as an HMAC secret lets whoever holds the public key (anyone) sign tokens.
    if (looksLikeKey(secret)) {
      throw new ConfigError('--jwt-secret-file', `${auth.secretFile} holds a key, not an HMAC secret: give a public key as --jwt-public-key`);
    }
    if (secret.length < MIN_HMAC_SECRET_BYTES) {
      throw new ConfigError('--jwt-secret-file', `secret is ${secret.length} bytes, need at least ${MIN_HMAC_SECRET_BYTES}`);
    }
    return { key: createSecretKey(secret), algorithms: HMAC_ALGS };
  }
  if (auth.jwksUrl) {
    // JWKS keys are asymmetric by nature; HMAC is never accepted from a key set.
    return {
      key: remoteKeySet(new URL(auth.jwksUrl)),
      algorithms: [...RSA_ALGS, 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
    };
  }
  throw new ConfigError('--jwt-public-key', 'no verification key configured');
}

/**
 * Whether a secret file's bytes are a key rather than a secret: PEM of any kind, a JWK, a public
 * key or certificate in DER, or the same DER written in base64 without the PEM lines (the
 * "public key" a provider's realm page shows).
 */
function looksLikeKey(secret: Buffer): boolean {
  if (secret.includes('-----BEGIN')) return true;
  const text = secret.toString('latin1');
  if (/^\s*\{[\s\S]*"kty"\s*:/.test(text)) return true;
  if (isDerKey(secret)) return true;
  const base64 = text.replace(/\s+/g, '');
  return /^[A-Za-z0-9+/_-]+={0,2}$/.test(base64) && isDerKey(Buffer.from(base64, base64.includes('-') || base64.includes('_') ? 'base64url' : 'base64'));
}

/** A public key (SubjectPublicKeyInfo or PKCS#1) or an X.509 certificate, in DER. */
function isDerKey(bytes: Buffer): boolean {
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      createPublicKey({ key: bytes, format: 'der', type });
      return true;
    } catch {
      // Not this kind.
    }
  }
  try {
    new X509Certificate(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * What in the authentication settings works but is likely a mistake, for the start-up log:
 * a key set with no audience (tokens the provider issued for any of its clients pass), and an
 * HMAC secret that others may read (anyone who can read it can mint tokens).
 */
export function authWarnings(auth: AuthConfig, modeOf: (path: string) => number = (p) => statSync(p).mode): string[] {
  const warnings: string[] = [];
  if (auth.jwksUrl && !auth.audience) {
    warnings.push("--jwks-url without --audience: tokens the provider issued for any of its clients are accepted; set --audience to this broker's client id");
  }
  if (auth.jwksUrl && !auth.issuer) {
    // A key set shared by many issuers (a multi-tenant provider's common keys) verifies them all.
    warnings.push('--jwks-url without --issuer: a token from any issuer that signs with these keys is accepted; set --issuer to the provider\'s issuer URL');
  }
  if (auth.secretFile) {
    const mode = modeOf(auth.secretFile) & 0o777;
    if (mode & 0o077) warnings.push(`--jwt-secret-file ${auth.secretFile} can be read by others (mode ${mode.toString(8).padStart(4, '0')}): anyone who reads it can mint tokens; chmod 600 it`);
  }
  return warnings;
}
