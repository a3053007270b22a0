import type { BrokerRef } from '../config/store.js';
import { listContainers, whoAmI } from './broker-api.js';
import { brokerLabel, loginHint } from './settings.js';
import { didYouMeanProfile, notFoundSuggestion, type TargetName } from './suggest.js';

export interface FailureContext {
  ref?: BrokerRef;
  token?: string;
  app?: string;
  /** The target of `enter APP PROC INSTANCE`, for what exists near it when it is not found. */
  target?: TargetName;
  env?: NodeJS.ProcessEnv;
}

/** A hint is not worth a long wait: the failure itself is already said. */
const LISTING_TIMEOUT_MS = 3_000;

/**
 * What to do next about a failure, as a line to print under the error (or undefined):
 * log in again for token problems, the missing grant for refusals, what exists near a target
 * that was not found, the URL to check when the broker cannot be reached.
 */
export async function nextStep(code: string, ctx: FailureContext, message = ''): Promise<string | undefined> {
  const env = ctx.env ?? process.env;
  const login = ctx.ref ? loginHint(ctx.ref, env) : 'enter login';
  switch (code) {
    case 'ENTRY_NO_TOKEN':
    case 'ENTRY_BAD_TOKEN':
    case 'ENTRY_TOKEN_EXPIRED':
    case 'ENTRY_TOKEN_REVOKED':
      if (env['ENTRY_TOKEN']) return 'The token comes from ENTRY_TOKEN: unset it, or set a valid one.';
      return `Run \`${login}\` to get a new token.`;
    case 'ENTRY_FORBIDDEN':
      return forbiddenHint(ctx);
    case 'ENTRY_NOT_ADMIN':
      return 'This needs the admin role (see your roles with `enter status`).';
    case 'ENTRY_NOT_FOUND':
      return ctx.target && ctx.ref && ctx.token ? notFoundSuggestion(ctx.target, await listContainers(ctx.ref, ctx.token, LISTING_TIMEOUT_MS)) : undefined;
    case 'ENTRY_APP_DENIED':
      return 'The broker never lets anyone into this app (its --deny-apps setting).';
    case 'ENTRY_CONNECT_FAILED':
      // The broker answered; its certificate is what failed, and the message says what to do.
      if (message.includes("the broker's certificate")) return undefined;
      // A profile's name says nothing of its address; a bare address is in the error already.
      if (ctx.ref?.bareName) {
        const slip = ctx.ref.closeProfile ? ` ${didYouMeanProfile(ctx.ref.closeProfile, { capital: true })}` : '';
        return `No profile is named "${ctx.ref.bareName}", so it was taken as the host ${ctx.ref.url}: \`enter broker ls\` lists the profiles.${slip}`;
      }
      return ctx.ref?.profile
        ? `Check the broker address (${brokerLabel(ctx.ref)} is ${ctx.ref.url}; \`enter broker ls\` lists them) and that the broker is running.`
        : 'Check the broker address (`enter broker ls` lists the ones you have) and that the broker is running.';
    case 'ENTRY_BAD_ANSWER':
      return ctx.ref
        ? `Check that ${ctx.ref.url} is the address of an Entry broker (\`enter broker ls\` lists them).`
        : 'Check that the broker address is that of an Entry broker (`enter broker ls`).';
    case 'ENTRY_NO_BROKER':
      return undefined;
    case 'ENTRY_RATE_LIMITED':
      return 'Wait a minute before trying again.';
    default:
      return undefined;
  }
}

async function forbiddenHint(ctx: FailureContext): Promise<string> {
  const app = ctx.app ? `"${ctx.app}"` : 'this app';
  if (!ctx.ref || !ctx.token) return `Ask for access to ${app}.`;
  try {
    const me = await whoAmI(ctx.ref, ctx.token);
    const grants = me.apps.length ? me.apps.join(', ') : 'none';
    return `Missing grant: app ${app} for user ${me.user} (your token grants apps: ${grants}). Ask for ${app} to be added to your token's apps.`;
  } catch {
    return `Missing grant: app ${app}. Ask for it to be added to your token's apps (see \`enter status\`).`;
  }
}
