import { generateKeyPairSync } from 'node:crypto';
import { userInfo } from 'node:os';
import { SignJWT } from 'jose';
import { saveToken } from '../../client/config/store.js';
import type { VerificationKey } from './keys.js';

/** How long a dev token lives: a working day and then some. */
const DEV_TOKEN_TTL_SEC = 12 * 3600;

export interface DevIdentity {
  key: VerificationKey;
  token: string;
  user: string;
}

/**
 * Dev mode: a fresh Ed25519 key for this broker process only, and a token for the local user
 * that may enter every app (the deny list still applies). The token is saved to the CLI's
 * config for `brokerUrl`, so `enter demo web 1` works at once. Never used unless --dev.
 */
export async function createDevIdentity(brokerUrl: string): Promise<DevIdentity> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const user = userInfo().username;
  const token = await new SignJWT({ apps: ['*'], roles: [] })
    .setProtectedHeader({ alg: 'EdDSA' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(`${DEV_TOKEN_TTL_SEC}s`)
    .sign(privateKey);
  saveToken(brokerUrl, token, { makeCurrent: true });
  return { key: { key: publicKey, algorithms: ['EdDSA', 'Ed25519'] }, token, user };
}
