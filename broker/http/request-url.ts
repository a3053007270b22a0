import type { IncomingMessage } from 'node:http';

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
