import type { IncomingMessage } from 'node:http';
import { EntryError } from '../errors.js';

const BASE = 'http://entry.invalid';

/**
 * The request target as a URL, or undefined when it is not one a server answers (`*`, garbage).
 * An origin-form target is appended to a base rather than resolved against it: resolved,
 * `//x` would name a host and `//` would not parse at all. The absolute form (`GET http://h/p`,
 * which HTTP/1.1 servers must accept) keeps its own path.
 */
export function requestUrl(req: IncomingMessage): URL | undefined {
  const target = req.url ?? '/';
  try {
    if (target.startsWith('/')) return new URL(BASE + target);
    const absolute = new URL(target);
    return absolute.protocol === 'http:' || absolute.protocol === 'https:' ? absolute : undefined;
  } catch {
    return undefined;
  }
}

/** The path of a request target as sent, before any URL parser resolved or decoded it. */
function sentPath(target: string): string {
  const path = target.startsWith('/') ? target : target.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '');
  return path.split(/[?#]/, 1)[0]!;
}

/**
 * The refusal of a request target whose path has dot segments (`/api/sessions/../whoami`,
 * `%2e%2e` too), an encoded slash (`%2F`) or a backslash, literal or encoded; undefined for any
 * other. A URL parser resolves them before routing, so the path answered is not the one sent,
 * and a proxy or authorization layer in front that matches the sent path by prefix is fooled
 * (`/assets/../api/sessions`). No client has a use for them: browsers and HTTP libraries remove
 * dot segments before sending, and no path the broker answers has a slash inside a segment.
 */
export function pathTrick(req: IncomingMessage): EntryError | undefined {
  const path = sentPath(req.url ?? '/');
  if (/%2f|%5c|\\/i.test(path)) return new EntryError('ENTRY_BAD_REQUEST', 'the request path has an encoded slash or a backslash');
  const dots = path.split('/').some((segment) => {
    const plain = segment.replace(/%2e/gi, '.');
    return plain === '.' || plain === '..';
  });
  return dots ? new EntryError('ENTRY_BAD_REQUEST', 'the request path has a dot segment (. or ..)') : undefined;
}
