import * as oidc from 'openid-client';
import { ClientError } from '../protocol/client-error.js';

/** Where `enter login` logs in, as the broker tells it in GET /api/config. */
export interface OidcSettings {
  issuer: string;
  clientId: string;
  scopes: string[];
}

function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}

/**
 * Discovers the provider (`/.well-known/openid-configuration`) for a public client: the CLI has
 * no secret, PKCE protects the code. Plain http is accepted only for a loopback issuer.
 */
export async function connectProvider(settings: Pick<OidcSettings, 'issuer' | 'clientId'>): Promise<oidc.Configuration> {
  let issuer: URL;
  try {
    issuer = new URL(settings.issuer);
  } catch {
    throw new ClientError('ENTRY_OIDC_FAILED', `the broker's OIDC issuer is not a URL: ${settings.issuer}`);
  }
  const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
  if (issuer.protocol !== 'https:' && !insecure) {
    throw new ClientError('ENTRY_OIDC_FAILED', `refusing OIDC issuer ${settings.issuer}: it must be https`);
  }
  try {
    return await oidc.discovery(issuer, settings.clientId, undefined, oidc.None(), {
      ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      timeout: 15,
    });
  } catch (err) {
    throw new ClientError('ENTRY_OIDC_FAILED', `cannot reach the identity provider ${settings.issuer}: ${describe(err)}`);
  }
}

/** A provider error in one line: `error: error_description`, or the network cause. */
export function describe(err: unknown): string {
  if (err instanceof oidc.ResponseBodyError) return err.error_description ? `${err.error}: ${err.error_description}` : err.error;
  if (err instanceof oidc.AuthorizationResponseError) return err.error_description ? `${err.error}: ${err.error_description}` : err.error;
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message} (${cause})` : (e.message ?? String(err));
}
