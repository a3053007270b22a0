import '../entry-terminal.js';
import './console.css';
import { ApiError, BrokerApi, type ContainerInfo, type SessionInfo, type WhoAmI } from '../api.js';
import { AuditView } from './audit-view.js';
import { ContainerList } from './container-list.js';
import { byId } from './dom.js';
import { LatestAsk } from './latest-ask.js';
import { replayTab } from './replay-view.js';
import { SessionList, sessionTarget } from './session-list.js';
import { bindShortcuts, type ViewName } from './shortcuts.js';
import { TerminalTabs } from './terminal-tabs.js';
import { clearToken, loadToken, saveToken } from './token-store.js';

/**
 * The broker's own console: sign in with a token, list the containers, open terminals; for
 * admins also the live sessions (watch, kill) and the audit trail (replay).
 */

/** The containers list reloads this often while the page is in view (not while it is hidden). */
const REFRESH_MS = 30_000;
/**
 * A list older than this is reloaded as the page comes back into view (another browser tab was
 * in front, the window minimised, the laptop asleep): the reloads above are skipped while it is
 * hidden, so it may be any age by then, and its containers gone. One younger than REFRESH_MS is
 * as fresh as one kept in view: looking away for a moment reloads nothing.
 */
const STALE_LIST_MS = REFRESH_MS;
/** The sessions list reloads this often while it is in front. */
const SESSIONS_REFRESH_MS = 5_000;
/** The broker serving this page, path prefix included (it may sit behind a proxy under /entry/). */
const BROKER = new URL('.', location.href).href;

const signInView = byId('sign-in-view');
const consoleView = byId('console-view');
const signInForm = byId<HTMLFormElement>('sign-in-form');
const tokenInput = byId<HTMLTextAreaElement>('token-input');
const signInError = byId('sign-in-error');
const who = byId('who');
const signOutButton = byId<HTMLButtonElement>('sign-out');
const viewTabs = byId('views');
const sessionsCount = byId('sessions-count');
const killDialog = byId<HTMLDialogElement>('kill-dialog');

let api: BrokerApi | undefined;
let token: string | undefined;
/** Who opened the terminals on the page: another user signing in does not get them. */
let owner: string | undefined;
/** Resolves at the next sign-in; a new one is made when the token is refused. */
let signedIn = nextSignIn();
let admin = false;
let view: ViewName = 'containers';
let refreshTimer: ReturnType<typeof setInterval> | undefined;
let sessionsTimer: ReturnType<typeof setInterval> | undefined;

const list = new ContainerList(
  { search: byId('search'), stateFilter: byId('state-filter'), rows: byId('container-rows'), status: byId('list-status') },
  (c) => tabs.add({ app: c.app, proc: c.proc, instance: c.instance }),
);
// Two reloads at once (coming back into view as the timer fires): the later one's list stays.
const listAsk = new LatestAsk<ContainerInfo[]>({
  show: (containers) => list.setContainers(containers),
  failed: (err, newer) => {
    if (!signedOutBy(err) && newer) list.showMessage(`Could not load the containers: ${(err as Error).message}`);
  },
});
const tabs = new TerminalTabs(
  { tabs: byId('tabs'), panels: byId('panels'), empty: byId('no-terminals'), layoutToggle: byId('layout-toggle') },
  BROKER,
  // Asked for when a terminal opens or resumes. While the sign-in form is up (the token was
  // refused) a resume waits for the next sign-in, within its grace period, and then uses the
  // token signed in with rather than the refused one.
  async (target, resuming) => {
    for (;;) {
      while (!api) await signedIn.done;
      const using = api;
      try {
        return (await using.ticket(target)).ticket;
      } catch (err) {
        // Refused (expired while the page sat idle): the form comes back, and a resume waits
        // for it. A new session says why it did not open (Enter tries again once signed in):
        // waiting, it ended at its 15 s bound as if the broker had not answered.
        if ((api === using && !signedOutBy(err)) || !resuming) throw err;
      }
    }
  },
  () => {
    if (!consoleView.hidden) focusSearch();
  },
);
const sessions = new SessionList(
  { filter: byId('sessions-filter'), rows: byId('session-rows'), status: byId('sessions-status') },
  {
    watch: (s) => tabs.watch(s.id, `${s.user}@${sessionTarget(s)}`, token ?? ''),
    kill: (s) => void kill(s),
  },
);
const audit = new AuditView(
  { form: byId('audit-form'), rows: byId('audit-rows'), status: byId('audit-status'), more: byId('audit-more') },
  {
    load: (q) => withApi((using) => using.audit(q)),
    replay: (e) => {
      if (!api || !e.sessionId) return;
      const target = `${e.app}/${e.proc}/${e.instance}`;
      const currentApi = api;
      const id = e.sessionId;
      tabs.replay(id, `${e.user ?? '?'}@${target}`, () => replayTab(currentApi, id, `${e.user ?? '?'} on ${target} · session ${id.slice(0, 8)}`, e.broker));
    },
    failed: (err) => !signedOutBy(err),
  },
);

bindShortcuts(
  { focusSearch, stepTab: (d) => tabs.step(d), closeTab: () => tabs.closeActive(), showView: (v) => showView(v, true) },
  () => !consoleView.hidden,
);

// Leaving the page ends every session open in it: the browser asks first, as for unsaved work.
window.addEventListener('beforeunload', (e) => {
  if (tabs.unclosedTerminals === 0) return;
  e.preventDefault();
  // Chromium before 119 asks only when returnValue is set.
  e.returnValue = '';
});

function nextSignIn(): { done: Promise<void>; resolve: () => void; reject: (reason: Error) => void } {
  let resolve!: () => void;
  let reject!: (reason: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => undefined);
  return { done, resolve, reject };
}

function focusSearch(): void {
  if (view === 'sessions') sessions.focusFilter();
  else if (view === 'audit') audit.focusFilter();
  else list.focusSearch();
}

/** Puts a view in front; Sessions and Audit exist for admins only (false: not shown). */
function showView(next: ViewName, focus: boolean): boolean {
  if (next !== 'containers' && !admin) return false;
  view = next;
  consoleView.dataset['view'] = next;
  for (const tab of viewTabs.querySelectorAll<HTMLButtonElement>('[role="tab"]')) {
    const selected = tab.dataset['view'] === next;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    byId(tab.getAttribute('aria-controls') ?? '').hidden = !selected;
  }
  clearInterval(sessionsTimer);
  if (next === 'sessions') {
    void refreshSessions();
    sessionsTimer = setInterval(() => {
      if (document.visibilityState === 'visible') void refreshSessions();
    }, SESSIONS_REFRESH_MS);
  }
  if (next === 'audit') audit.show();
  if (focus) focusSearch();
  return true;
}

// The view tabs: one tab stop, arrows move between them.
viewTabs.addEventListener('click', (e) => {
  const tab = (e.target as HTMLElement).closest<HTMLButtonElement>('[role="tab"]');
  if (tab?.dataset['view']) showView(tab.dataset['view'] as ViewName, false);
});
viewTabs.addEventListener('keydown', (e) => {
  const all = [...viewTabs.querySelectorAll<HTMLButtonElement>('[role="tab"]')];
  const i = all.indexOf(document.activeElement as HTMLButtonElement);
  if (i < 0 || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft')) return;
  e.preventDefault();
  const next = all[(i + (e.key === 'ArrowRight' ? 1 : -1) + all.length) % all.length];
  if (next?.dataset['view']) {
    showView(next.dataset['view'] as ViewName, false);
    next.focus();
  }
});

function showSignIn(message?: string): void {
  consoleView.hidden = true;
  who.hidden = true;
  signOutButton.hidden = true;
  signInView.hidden = false;
  signInError.hidden = !message;
  signInError.textContent = message ?? '';
  tokenInput.focus();
}

function showConsole(me: WhoAmI): void {
  signInView.hidden = true;
  consoleView.hidden = false;
  signOutButton.hidden = false;
  who.hidden = false;
  who.textContent = me.admin ? `${me.user} · admin` : me.user;
  const expires = new Date(me.expiresAt);
  who.title = `apps: ${me.admin ? 'all' : me.apps.join(', ') || 'none'}\ntoken expires ${Number.isNaN(expires.getTime()) ? 'never' : expires.toLocaleString()}`;
  admin = me.admin;
  viewTabs.hidden = !admin;
  byId('admin-keys').hidden = !admin;
  showView('containers', true);
}

async function signIn(candidate: string): Promise<void> {
  const candidateApi = new BrokerApi(candidate, BROKER);
  let me: WhoAmI;
  try {
    me = await candidateApi.whoami();
  } catch (err) {
    // Only the broker's 401 says the token is no good; a broker that is starting, a proxy's 502
    // or an address over its failure limit say nothing of it, so a saved token stays for the
    // next load.
    if (err instanceof ApiError && err.status === 401) clearToken();
    showSignIn(err instanceof ApiError ? err.message : String(err));
    return;
  }
  // Terminals left open when the token was refused are that user's sessions: another user
  // signing in at this browser ends them rather than taking them over.
  if (owner !== undefined && owner !== me.user) {
    tabs.closeAll();
    // Another user's list, kept behind the form since the token was refused.
    forgetContainers();
  }
  owner = me.user;
  token = candidate;
  api = candidateApi;
  saveToken(candidate);
  tokenInput.value = '';
  tabs.renewToken(candidate);
  signedIn.resolve();
  showConsole(me);
  await refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
}

function signOut(message?: string): void {
  clearInterval(refreshTimer);
  clearInterval(sessionsTimer);
  if (killDialog.open) killDialog.close();
  tabs.closeAll();
  clearToken();
  token = undefined;
  api = undefined;
  owner = undefined;
  // A ticket still waited for belongs to a terminal just closed: it gets none.
  signedIn.reject(new Error('signed out'));
  signedIn = nextSignIn();
  admin = false;
  viewTabs.hidden = true;
  sessions.clear();
  sessionsCount.textContent = '';
  audit.clear();
  forgetContainers();
  showView('containers', false);
  showSignIn(message);
}

/** The containers of the user signed out: neither shown nor, when a reload was out, put back. */
function forgetContainers(): void {
  listAsk.forget();
  list.clear();
}

/**
 * The broker no longer takes the token (expired, revoked): the sign-in form comes back. Open
 * terminals are kept as they are, hidden: an expired token's sessions run on, and closing them
 * would end a migration halfway (a revoked token's are ended by the broker, each saying so).
 * Signing out is what ends them.
 */
function tokenRefused(message: string, code: string): void {
  clearInterval(refreshTimer);
  clearInterval(sessionsTimer);
  if (killDialog.open) killDialog.close();
  clearToken();
  token = undefined;
  api = undefined;
  // Reloads still out carry the refused token: a 401 of theirs answered after the next sign-in
  // would refuse that one. The list shown stays behind the form for the same user.
  listAsk.forget();
  signedIn = nextSignIn();
  // Terminals whose session goes on: one that has ended (or a replay) is not kept running.
  const open = tabs.liveSessions;
  const fate = code === 'ENTRY_TOKEN_REVOKED' ? 'the broker ends the sessions of a revoked token' : `${open === 1 ? 'it keeps' : 'they keep'} running`;
  showSignIn(open > 0 ? `${message}. Sign in again as ${owner ?? 'the same user'} to get back to your ${open === 1 ? 'open terminal' : `${open} open terminals`}: ${fate}; signing in as another user or signing out ends ${open === 1 ? 'it' : 'them'}.` : message);
  // Ending them must not wait for a token.
  if (open > 0) signOutButton.hidden = false;
}

/** The answer to a call made with a token signed out or refused since: not for whoever is signed in now. */
class Superseded extends Error {}

/** `call` with the token signed in now; its answer or failure is Superseded once that token is given up. */
async function withApi<T>(call: (using: BrokerApi) => Promise<T>): Promise<T> {
  const using = api;
  if (!using) throw new Superseded('signed out');
  let value: T;
  try {
    value = await call(using);
  } catch (err) {
    throw api === using ? err : new Superseded('signed out since', { cause: err });
  }
  if (api !== using) throw new Superseded('signed out since');
  return value;
}

/**
 * Asks for a new token when the broker no longer takes this one; true if it did, and for a call
 * superseded by a sign-out: either way there is nothing to tell.
 */
function signedOutBy(err: unknown): boolean {
  if (err instanceof Superseded) return true;
  if (err instanceof ApiError && err.status === 401) {
    tokenRefused(err.message, err.code);
    return true;
  }
  return false;
}

async function refresh(): Promise<void> {
  if (!api) return;
  const using = api;
  // An answer dropped for a later ask's: that ask's reload counts the sessions.
  if (!(await listAsk.ask(() => using.containers()))) return;
  // The count on the Sessions tab stays roughly current in the other views too.
  if (admin && view !== 'sessions') await refreshSessions();
}

// Back in view after a while: the list is reloaded before it is acted on (see STALE_LIST_MS).
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && api && listAsk.olderThan(STALE_LIST_MS)) void refresh();
});

async function refreshSessions(): Promise<void> {
  if (!api || !admin) return;
  try {
    const live = await withApi((using) => using.sessions());
    sessions.setSessions(live);
    sessionsCount.textContent = live.length ? String(live.length) : '';
  } catch (err) {
    if (!signedOutBy(err)) sessions.showMessage(`Could not load the sessions: ${(err as Error).message}`);
  }
}

function confirmKill(s: SessionInfo): Promise<boolean> {
  byId('kill-text').textContent = `${s.user} on ${sessionTarget(s)} (${s.command ? 'a scripted command' : 'a shell'}, from ${s.source}).`;
  killDialog.returnValue = '';
  killDialog.showModal();
  return new Promise((resolve) => killDialog.addEventListener('close', () => resolve(killDialog.returnValue === 'kill'), { once: true }));
}

async function kill(s: SessionInfo): Promise<void> {
  if (!api || !(await confirmKill(s)) || !api) return;
  try {
    await withApi((using) => using.killSession(s.id));
    sessions.markEnding(s.id);
    sessions.showMessage(`Ending the session of ${s.user} on ${sessionTarget(s)}…`);
  } catch (err) {
    if (!signedOutBy(err)) sessions.showMessage(`Could not kill the session: ${(err as Error).message}`);
    return;
  }
  // The broker holding it ends it within moments; the list follows.
  await refreshSessions();
  setTimeout(() => void refreshSessions(), 1000);
}

signInForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const value = tokenInput.value.trim().replace(/^Bearer\s+/i, '');
  if (value) void signIn(value);
});
// Enter signs in; Shift+Enter still makes a new line in the box.
tokenInput.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    signInForm.requestSubmit();
  }
});
signOutButton.addEventListener('click', () => signOut());
byId('refresh').addEventListener('click', () => void refresh());
byId('sessions-refresh').addEventListener('click', () => void refreshSessions());

const saved = loadToken();
if (saved) void signIn(saved);
else showSignIn();
