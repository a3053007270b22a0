import { type BrokerRef, credentialsFor, loadSavedConfig } from '../config/store.js';
import { type BrokerInfo, brokerInfo, type ContainerEntry, listContainers, type WhoAmI, whoAmI } from './broker-api.js';
import { printable, relative, shortDuration, table } from './format.js';
import { brokerLabel, loginHint, notAProfile, resolveToken } from './settings.js';
import { appPattern } from './glob.js';
import { closeNames, didYouMean } from './suggest.js';
import { cacheTargets } from './targets.js';

/** `enter ls [app]`: the targets the token may enter. */
export async function listCommand(ref: BrokerRef, app: string | undefined, json: boolean): Promise<void> {
  const token = await resolveToken(ref);
  const all = await listContainers(ref, token);
  cacheTargets(ref, all);
  const match = app ? appPattern(app) : undefined;
  const shown = match ? all.filter((c) => match.test(c.app)) : all;
  shown.sort(byTarget);
  if (json) {
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return;
  }
  if (shown.length === 0) {
    const close = app ? closeNames(app, all.map((c) => c.app)) : [];
    process.stderr.write(`enter: nothing to enter${app ? ` in ${app}` : ''} on ${brokerLabel(ref)}${close.length ? `; ${didYouMean(close)}` : ''}\n`);
    if (all.length === 0 || (app && close.length === 0)) {
      const why = await noGrantsHint(ref, token, app);
      if (why) process.stderr.write(`  ${why}\n`);
    }
    return;
  }
  const now = Date.now();
  process.stdout.write(
    table(
      ['APP', 'PROC', 'INSTANCE', 'STATE', 'HOST', 'AGE'],
      shown.map((c) => [c.app, c.proc, c.instance, c.reason ? `${c.state} (${c.reason})` : c.state, c.host ?? 'local', c.created ? shortDuration(now - Date.parse(c.created)) : '-']),
    ),
  );
}

/**
 * Why an empty listing is empty when the token is the reason: it grants no apps, or not the app
 * named (as `enter status` shows). Undefined when it grants them, or when the broker cannot say:
 * the listing holds only what the token may enter, so an app that does not exist and one
 * without containers look the same to the CLI.
 */
async function noGrantsHint(ref: BrokerRef, token: string, app: string | undefined): Promise<string | undefined> {
  try {
    const me = await whoAmI(ref, token);
    if (me.admin) return undefined;
    if (me.apps.length === 0) return `Your token grants user ${me.user} no apps. Ask for the apps you need to be added to your token's apps.`;
    // A pattern (`shop-*`) may name apps the token grants and others it does not: no verdict.
    if (!app || /[*?]/.test(app) || me.apps.some((p) => p === app || (/[*?]/.test(p) && appPattern(p).test(app)))) return undefined;
    return `Your token grants user ${me.user} ${me.apps.join(', ')}, not ${app}. Ask for ${app} to be added to your token's apps.`;
  } catch {
    return undefined;
  }
}

function byTarget(a: ContainerEntry, b: ContainerEntry): number {
  return a.app.localeCompare(b.app) || a.proc.localeCompare(b.proc) || Number(a.instance) - Number(b.instance) || (a.host ?? '').localeCompare(b.host ?? '');
}

export interface StatusReport {
  broker: { name: string | null; url: string; reachable: boolean; version: string | null; error: string | null };
  login: { source: 'ENTRY_TOKEN' | 'oidc' | 'token' | null; issuer: string | null; refreshable: boolean };
  identity: (WhoAmI & { valid: true }) | { valid: false; error: string } | null;
}

/**
 * `enter status`: is the broker there (and which version), who does the token say you are,
 * until when, and what it grants. Exit status 0 only when all of that checks out.
 */
export async function statusCommand(ref: BrokerRef, json: boolean): Promise<number> {
  const report: StatusReport = {
    broker: { name: ref.profile ?? null, url: ref.url, reachable: false, version: null, error: null },
    login: { source: null, issuer: null, refreshable: false },
    identity: null,
  };
  let info: BrokerInfo | undefined;
  try {
    info = await brokerInfo(ref);
    report.broker.reachable = true;
    report.broker.version = info.version;
  } catch (err) {
    report.broker.error = (err as Error).message;
  }
  const creds = credentialsFor(ref, loadSavedConfig());
  if (process.env['ENTRY_TOKEN']) report.login.source = 'ENTRY_TOKEN';
  else if (creds.token) {
    report.login.source = creds.oidc ? 'oidc' : 'token';
    report.login.issuer = creds.oidc?.issuer ?? null;
    report.login.refreshable = Boolean(creds.refreshToken);
  }
  if (report.broker.reachable && report.login.source) {
    try {
      const token = await resolveToken(ref);
      const me = await whoAmI(ref, token);
      report.identity = { ...me, valid: true };
    } catch (err) {
      report.identity = { valid: false, error: (err as Error).message };
    }
  }
  const ok = report.broker.reachable && report.identity?.valid === true;
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return ok ? 0 : 255;
  }
  const lines: Array<[string, string]> = [];
  const name = ref.profile ? `${ref.profile} (${ref.url})` : ref.url;
  lines.push(['broker', report.broker.reachable ? `${name}: reachable, Entry ${report.broker.version}` : `${name}: unreachable: ${report.broker.error}`]);
  if (info?.oidc) lines.push(['login with', `${info.oidc.issuer} (client ${info.oidc.clientId})`]);
  const source =
    report.login.source === 'ENTRY_TOKEN'
      ? 'token from ENTRY_TOKEN'
      : report.login.source === 'oidc'
        ? `logged in with ${report.login.issuer}${report.login.refreshable ? ', refreshed automatically' : ''}`
        : report.login.source === 'token'
          ? 'saved token'
          : `not logged in${notAProfile(ref)}: run \`${loginHint(ref)}\``;
  lines.push(['token', source]);
  const id = report.identity;
  if (id && id.valid) {
    const exp = Date.parse(id.expiresAt);
    lines.push(['user', id.user]);
    lines.push(['expires', `${id.expiresAt} (${relative(exp)})`]);
    lines.push(['apps', id.admin ? 'all (admin)' : id.apps.length ? id.apps.join(', ') : 'none']);
    lines.push(['roles', id.roles.length ? id.roles.join(', ') : 'none']);
  } else if (id) {
    lines.push(['user', `unknown: ${id.error}`]);
  }
  const width = Math.max(...lines.map(([k]) => k.length));
  process.stdout.write(lines.map(([k, v]) => `${k.padEnd(width)}  ${printable(v)}`).join('\n') + '\n');
  if (!ok && report.broker.reachable && report.login.source !== 'ENTRY_TOKEN') process.stderr.write(`enter: run \`${loginHint(ref)}\` to log in${id ? ' again' : ''}\n`);
  return ok ? 0 : 255;
}
