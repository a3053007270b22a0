import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** An upgrade to WebSocket, the only protocol the broker switches to. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket';
}

/** Headers that ask for an upgrade, left out when the request is read again. */
const UPGRADE_ONLY = new Set(['upgrade', 'http2-settings']);

/**
 * A request that offers another protocol (`curl --http2` and Java's HttpClient offer `h2c` on
 * every http:// request) is an ordinary request to be answered as one: the server may ignore
 * Upgrade (RFC 9110 §7.8). Node hands any request with Upgrade to the 'upgrade' listener, past
 * its parser, with the body still unread on the socket; so the request line and headers are
 * written again without the upgrade, put back in front of the body, and the connection is given
 * to the server as a new one, which reads it as it reads any request.
 */
export function answerAsPlainRequest(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer, unanswered: readonly ServerResponse[]): void {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (UPGRADE_ONLY.has(lower)) continue;
    let value = raw[i + 1]!;
    if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t && !UPGRADE_ONLY.has(t.toLowerCase()))
        .join(', ');
      if (!value) continue;
    }
    lines.push(`${name}: ${value}`);
  }
  const again = () => {
    socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
    // An https server reads requests from its 'secureConnection' sockets, an http one from 'connection'.
    server.emit('encrypted' in socket ? 'secureConnection' : 'connection', socket);
  };
  // A request pipelined behind answers still being written (`unanswered`, in order, kept
  // current by the listener): read again once the last is done, or the new reading's answer
  // would wait behind them for ever (they belong to the connection's old reading).
  const last = unanswered.at(-1);
  if (!last || last.writableFinished) return again();
  // Node took the connection's 'drain' from those answers along with the upgrade: handed back to
  // the one being written until the last is done, or a large one would wait for a drain that
  // never comes.
  const drain = () => unanswered[0]?.emit('drain');
  socket.on('drain', drain);
  last.once('finish', () => {
    socket.off('drain', drain);
    again();
  });
}
