import { generateKeyPairSync } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { type JWTPayload, SignJWT } from 'jose';
import type { AuthConfig } from '../config/config.js';
import type { VerificationKey } from './keys.js';

/** How long a dev token lives: a working day and then some. */
const DEV_TOKEN_TTL_SEC = 12 * 3600;

export interface DevIdentity {
  key: VerificationKey;
  token: string;
  user: string;
}

/** What the dev token must say for this broker's verifier to read it as intended. */
export type DevClaims = Pick<AuthConfig, 'claims' | 'adminRole' | 'issuer' | 'audience'>;

/**
 * Dev mode: a fresh Ed25519 key for this broker process only, and a token for the local user
 * that may enter every app (the deny list still applies) and holds the admin role: the local
 * user is this broker's operator, so `enter sessions` and `enter watch` work too. The claims go
 * where --user-claim, --apps-claim and --roles-claim say. Never used unless --dev.
 */
export async function createDevIdentity(auth: DevClaims): Promise<DevIdentity> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const user = userInfo().username;
  const payload: JWTPayload = {};
  setClaim(payload, auth.claims.apps, ['*']);
  setClaim(payload, auth.claims.roles, [auth.adminRole]);
  setClaim(payload, auth.claims.user, user);
  const jwt = new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA' }).setIssuedAt().setExpirationTime(`${DEV_TOKEN_TTL_SEC}s`);
  if (auth.issuer) jwt.setIssuer(auth.issuer);
  if (auth.audience) jwt.setAudience(auth.audience);
  return { key: { key: publicKey, algorithms: ['EdDSA', 'Ed25519'] }, token: await jwt.sign(privateKey), user };
}

/** Sets a dotted claim path (`realm_access.roles`) as claimAt reads it. */
function setClaim(payload: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = payload;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    cur = next !== null && typeof next === 'object' && !Array.isArray(next) ? (next as Record<string, unknown>) : (cur[part] = {});
  }
  cur[parts[parts.length - 1]!] = value;
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
