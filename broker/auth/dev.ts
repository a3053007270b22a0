import { generateKeyPairSync } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { SignJWT } from 'jose';
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
 * that may enter every app (the deny list still applies). Never used unless --dev.
 */
export async function createDevIdentity(): Promise<DevIdentity> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const user = userInfo().username;
  const token = await new SignJWT({ apps: ['*'], roles: [] })
    .setProtectedHeader({ alg: 'EdDSA' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(`${DEV_TOKEN_TTL_SEC}s`)
    .sign(privateKey);
  return { key: { key: publicKey, algorithms: ['EdDSA', 'Ed25519'] }, token, user };
}

/**
 * Writes the dev token to `tokenFile`, readable by this user only, for `enter login < FILE`
 * (deploy/dev/up.sh does that). Written once the broker listens: a second broker that cannot
 * have the address must not replace the token of the one running.
 */
export function writeDevToken(tokenFile: string, token: string): void {
  // A fresh file of our own: never through a link someone else left at that path.
  rmSync(tokenFile, { force: true });
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
}
