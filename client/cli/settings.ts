import { type BrokerRef, credentialsFor, loadSavedConfig, resolveBrokerRef, storeCredentials } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';
import { closeNames, didYouMeanProfile } from './suggest.js';
import { tokenFault } from './token-text.js';

/** Refresh an OIDC token when it has less than this left (and never send an expired one). */
export const REFRESH_MARGIN_SEC = 60;

/**
 * The broker a command talks to: `-b NAME|URL`, else ENTRY_BROKER (a name or a URL), else the
 * saved default (`enter broker use`, or the broker logged in to last).
 */
export function resolveBroker(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): BrokerRef {
  const config = loadSavedConfig(env);
  const raw = flag || env['ENTRY_BROKER'] || config.current;
  if (!raw) {
    throw new ClientError('ENTRY_NO_BROKER', 'no broker: add one with `enter broker add NAME URL` (or pass -b URL, or set ENTRY_BROKER)');
  }
  try {
    const ref = resolveBrokerRef(raw, config);
    const close = ref.bareName ? closeNames(ref.bareName, Object.keys(config.profiles ?? {}))[0] : undefined;
    return close ? { ...ref, closeProfile: close } : ref;
  } catch (err) {
    throw new ClientError('ENTRY_NO_BROKER', `${(err as Error).message} (not a profile either: see enter broker ls)`);
  }
}

/** How a broker is named in messages and in the commands they suggest. */
export function brokerLabel(ref: BrokerRef): string {
  return ref.profile ?? ref.url;
}

/** For a bare name taken as a host: that no profile has it (a mistyped profile, most likely). */
export function notAProfile(ref: BrokerRef): string {
  return ref.bareName ? ` (taken as a host name: no profile is named "${ref.bareName}"${ref.closeProfile ? `; ${didYouMeanProfile(ref.closeProfile)}` : ','} see \`enter broker ls\`)` : '';
}

/** `did you mean -b prod? ` for a bare name close to a profile's, else nothing. */
function slip(ref: BrokerRef): string {
  return ref.closeProfile ? `${didYouMeanProfile(ref.closeProfile)} ` : '';
}

/** `enter login` with the -b needed to reach this broker (none for the default broker). */
export function loginHint(ref: BrokerRef, env: NodeJS.ProcessEnv = process.env): string {
  const config = loadSavedConfig(env);
  const isDefault = !env['ENTRY_BROKER'] && config.current !== undefined && (config.current === ref.profile || config.current === ref.url);
  return isDefault ? 'enter login' : `enter login -b ${brokerLabel(ref)}`;
}

/**
 * The token for a broker: ENTRY_TOKEN, else the saved one. A saved OIDC token that is about to
 * expire is refreshed first (and saved), so a command never starts with a token that dies in it.
 */
export async function resolveToken(ref: BrokerRef, env: NodeJS.ProcessEnv = process.env, now = Date.now()): Promise<string> {
  const fromEnv = env['ENTRY_TOKEN']?.trim();
  if (fromEnv) {
    // `export ENTRY_TOKEN=$(cat token.txt)` keeps a CR from a CRLF file: a header cannot carry it.
    const bad = tokenFault(fromEnv);
    if (bad) throw new ClientError('ENTRY_BAD_REQUEST', `ENTRY_TOKEN ${bad}: set it to the token alone`);
    // `-b prdo` for the profile prod: the environment's token is for the broker meant, not for
    // whatever answers at http://prdo. A host is meant when it is written as a URL.
    if (ref.bareName) {
      throw new ClientError(
        'ENTRY_NO_BROKER',
        `no profile is named "${ref.bareName}", and ENTRY_TOKEN is not sent to a host named by a bare word: ${slip(ref)}write it as a URL (${ref.url}) if that host is meant, or see \`enter broker ls\``,
      );
    }
    return fromEnv;
  }
  const creds = credentialsFor(ref, loadSavedConfig(env));
  if (!creds.token) {
    throw new ClientError('ENTRY_NO_TOKEN', `not logged in to ${brokerLabel(ref)}${notAProfile(ref)}: run \`${loginHint(ref, env)}\` (or set ENTRY_TOKEN)`);
  }
  const left = creds.expiresAt === undefined ? Infinity : creds.expiresAt - now / 1000;
  if (left > REFRESH_MARGIN_SEC) return creds.token;
  if (creds.refreshToken && creds.oidc) {
    try {
      // The OIDC client only when a refresh is due: it is the largest module of the CLI.
      const { refreshCredentials } = await import('../oidc/login.js');
      const fresh = await refreshCredentials(creds);
      storeCredentials(ref, fresh, { env });
      return fresh.token!;
    } catch (err) {
      // Another enter process may have refreshed (and rotated the refresh token) meanwhile.
      const again = credentialsFor(ref, loadSavedConfig(env));
      if (again.token && again.token !== creds.token && (again.expiresAt ?? Infinity) - now / 1000 > 0) return again.token;
      if (left > 0) {
        // Still valid for a while: go on with it, but say why it was not renewed.
        process.stderr.write(`enter: ${(err as Error).message}; using the current token (valid ${Math.floor(left)} s more)\n`);
        return creds.token;
      }
      throw new ClientError('ENTRY_TOKEN_EXPIRED', `your login to ${brokerLabel(ref)} expired and ${(err as Error).message}: run \`${loginHint(ref, env)}\``);
    }
  }
  if (left > 0) return creds.token;
  throw new ClientError('ENTRY_TOKEN_EXPIRED', `your token for ${brokerLabel(ref)} expired at ${new Date(creds.expiresAt! * 1000).toISOString()}: run \`${loginHint(ref, env)}\``);
}
