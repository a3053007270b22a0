import { createReadStream, type Stats, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { sendMethodNotAllowed } from './respond.js';
import { sendStream } from './send-stream.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/**
 * Serves the built console from `root`. Hashed files under /assets/ never change, so they
 * are cached for a year; everything else is revalidated on each load.
 */
export function serveStatic(req: IncomingMessage, res: ServerResponse, path: string, root: string): boolean {
  const rel = path === '/' ? '/index.html' : path;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return false;
  }
  const file = normalize(join(root, decoded));
  if (!file.startsWith(root + sep) || decoded.includes('\0')) return false;
  let stat: Stats;
  try {
    stat = statSync(file);
  } catch {
    return false;
  }
  if (!stat.isFile()) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendMethodNotAllowed(res, req.method, path, 'GET, HEAD');
    return true;
  }
  const immutable = decoded.startsWith('/assets/');
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': String(stat.size),
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
    ...(extname(file) === '.html'
      ? {
          'x-frame-options': 'SAMEORIGIN',
          'referrer-policy': 'no-referrer',
          // xterm.js writes its own <style> elements, hence 'unsafe-inline' for styles only;
          // asciinema-player's terminal is WebAssembly, hence 'wasm-unsafe-eval' (no JS eval).
          // default-src covers neither <base> nor form targets: the page sets no base and its
          // forms are read by script, so an injected <base> or a form submitted natively (its
          // fields in a URL) goes nowhere. A <dialog>'s form is no navigation and still closes it.
          'content-security-policy':
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
        }
      : {}),
  });
  if (req.method === 'HEAD') res.end();
  // An answer to a pipelined request waits for the ones before it; its file is opened when its
  // turn comes (Node gives it the connection then), not held open meanwhile.
  else if (res.socket) sendStream(createReadStream(file), req, res);
  else res.once('socket', () => sendStream(createReadStream(file), req, res));
  return true;
}
