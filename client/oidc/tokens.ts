import { decodeJwt } from 'jose';
import type { Credentials } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';

/** What a token endpoint answers, as far as Entry cares. */
export interface TokenResponse {
  id_token?: string;
  access_token: string;
  refresh_token?: string;
  expires_in?: number;
}

/**
 * The bearer token for the broker from a token response. The ID token is used (as kubectl's
 * OIDC support does): it is a JWT for this client (`aud` = client id) that carries the user's
 * claims; the access token only when the provider sends no ID token.
 */
export function credentialsFrom(response: TokenResponse, provider: { issuer: string; clientId: string }, previous?: Credentials): Credentials {
  const token = response.id_token ?? response.access_token;
  if (!token) throw new ClientError('ENTRY_OIDC_FAILED', 'the identity provider answered without a token');
  const creds: Credentials = { token, oidc: { issuer: provider.issuer, clientId: provider.clientId } };
  const exp = jwtExpiry(token);
  if (exp) creds.expiresAt = exp;
  else if (response.expires_in) creds.expiresAt = Math.floor(Date.now() / 1000) + response.expires_in;
  // Providers that do not rotate refresh tokens answer a refresh without a new one.
  const refresh = response.refresh_token ?? previous?.refreshToken;
  if (refresh) creds.refreshToken = refresh;
  return creds;
}

/** `exp` of a JWT in epoch seconds, without verifying it (the broker verifies). */
export function jwtExpiry(token: string): number | undefined {
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}
