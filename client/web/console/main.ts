import '../entry-terminal.js';
import './console.css';
import { ApiError, BrokerApi, ticketsFrom, type WhoAmI } from '../api.js';
import { ContainerList } from './container-list.js';
import { byId } from './dom.js';
import { bindShortcuts } from './shortcuts.js';
import { TerminalTabs } from './terminal-tabs.js';
import { clearToken, loadToken, saveToken } from './token-store.js';

/** The broker's own console: sign in with a token, list the containers, open terminals. */

const REFRESH_MS = 30_000;
/** The broker serving this page, path prefix included (it may sit behind a proxy under /entry/). */
const BROKER = new URL('.', location.href).href;

const signInView = byId('sign-in-view');
const consoleView = byId('console-view');
const signInForm = byId<HTMLFormElement>('sign-in-form');
const tokenInput = byId<HTMLTextAreaElement>('token-input');
const signInError = byId('sign-in-error');
const who = byId('who');
const signOutButton = byId<HTMLButtonElement>('sign-out');

let api: BrokerApi | undefined;
let token: string | undefined;
let refreshTimer: ReturnType<typeof setInterval> | undefined;

const list = new ContainerList(
  { search: byId('search'), stateFilter: byId('state-filter'), rows: byId('container-rows'), status: byId('list-status') },
  (c) => tabs.add({ app: c.app, proc: c.proc, instance: c.instance }),
);
const tabs = new TerminalTabs(
  { tabs: byId('tabs'), panels: byId('panels'), empty: byId('no-terminals'), layoutToggle: byId('layout-toggle') },
  BROKER,
  () => ticketsFrom(token ?? '', BROKER),
  () => {
    if (!consoleView.hidden) list.focusSearch();
  },
);

bindShortcuts(
  { focusSearch: () => list.focusSearch(), stepTab: (d) => tabs.step(d), closeTab: () => tabs.closeActive() },
  () => !consoleView.hidden,
);

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
  list.focusSearch();
}

async function signIn(candidate: string): Promise<void> {
  const candidateApi = new BrokerApi(candidate, BROKER);
  let me: WhoAmI;
  try {
    me = await candidateApi.whoami();
  } catch (err) {
    clearToken();
    showSignIn(err instanceof ApiError ? err.message : String(err));
    return;
  }
  token = candidate;
  api = candidateApi;
  saveToken(candidate);
  tokenInput.value = '';
  showConsole(me);
  await refresh();
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
}

function signOut(message?: string): void {
  clearInterval(refreshTimer);
  tabs.closeAll();
  clearToken();
  token = undefined;
  api = undefined;
  showSignIn(message);
}

async function refresh(): Promise<void> {
  if (!api) return;
  try {
    list.setContainers(await api.containers());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) signOut(err.message);
    else list.showMessage(`Could not load the containers: ${(err as Error).message}`);
  }
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

const saved = loadToken();
if (saved) void signIn(saved);
else showSignIn();
