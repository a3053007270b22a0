/** Where a browser client finds the broker: its HTTP base and its /enter and /watch WebSocket addresses. */

export interface Target {
  app: string;
  proc: string;
  instance: string | number;
}

/**
 * The broker's base URL without a trailing slash; default: the page's own origin. `host:port`
 * without a scheme takes the page's (the URL parser would read `localhost:` as a scheme).
 * Throws for anything that is not an http(s) or ws(s) address.
 */
export function brokerBase(broker?: string): string {
  const given = broker && !/^[a-z][a-z0-9+.-]*:\/\//i.test(broker) && /^[^/?#]+:\d+(?:[/?#]|$)/.test(broker) ? `//${broker}` : broker;
  const base = new URL(given || '/', location.href);
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(base.protocol)) throw new Error(`not a broker address: ${JSON.stringify(broker)}`);
  base.search = '';
  base.hash = '';
  return base.toString().replace(/\/$/, '');
}

/** The /enter socket address for a target, with a ticket when there is one, and the session it resumes. */
export function enterSocketUrl(broker: string, target: Target, ticket?: string, resume?: string): string {
  const url = new URL(`${brokerBase(broker)}/enter`);
  url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  url.searchParams.set('app', target.app);
  url.searchParams.set('proc', target.proc);
  url.searchParams.set('instance', String(target.instance));
  if (ticket) url.searchParams.set('ticket', ticket);
  if (resume) url.searchParams.set('resume', resume);
  return url.toString();
}

/** The /watch socket address for a session (admins; the token goes in the subprotocol list). */
export function watchSocketUrl(broker: string, session: string): string {
  const url = new URL(`${brokerBase(broker)}/watch`);
  url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  url.searchParams.set('session', session);
  return url.toString();
}

/** base64url without padding of the token's UTF-8 bytes, as the `entry.bearer.` subprotocol carries it. */
export function base64url(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function targetLabel(target: Target): string {
  return `${target.app}/${target.proc}/${target.instance}`;
}
