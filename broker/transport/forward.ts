import type { IncomingMessage } from 'node:http';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';

/** Marks an upgrade one broker handed to another: never handed on again (no loops). */
export const FORWARDED_BY_HEADER = 'entry-forwarded-by';

/**
 * Hands an upgrade request to another broker untouched, as a TCP proxy would: its request line
 * and headers (credential included: the holder authenticates it itself), what followed them,
 * then bytes both ways until either side closes. X-Forwarded-For gains the peer, for a holder
 * that lists this broker among its trusted proxies.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  holderUrl: string,
  brokerId: string,
  o: { keepAliveMs: number; connectTimeoutMs: number },
  onFailed: (err: Error) => void,
): void {
  const url = new URL(holderUrl);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) throw new Error(`not a broker's address: ${holderUrl}`);
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  // An IPv6 literal keeps its brackets in `hostname`; connect wants the address alone.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // SNI names a host, never an address (RFC 6066).
  const upstream: Socket = secure ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }) }) : netConnect(port, host);
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
  let forwardedFor = '';
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === FORWARDED_BY_HEADER) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor ? `${forwardedFor}, ${req.rawHeaders[i + 1]}` : req.rawHeaders[i + 1]!;
      continue;
    }
    lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
  }
  const peer = req.socket.remoteAddress ?? '';
  lines.push(`X-Forwarded-For: ${forwardedFor ? `${forwardedFor}, ${peer}` : peer}`);
  lines.push(`${FORWARDED_BY_HEADER}: ${brokerId}`);
  let connected = false;
  // A holder that does not answer (its host gone, a firewall dropping packets) fails as one that
  // refuses, within the time an admission has, not after the OS gives up.
  upstream.setTimeout(o.connectTimeoutMs, () => {
    if (!connected) upstream.destroy(new Error(`no connection within ${o.connectTimeoutMs} ms`));
  });
  upstream.once(secure ? 'secureConnect' : 'connect', () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  });
  // Nothing above the bytes here sees this client: the kernel's keepalive finds a vanished one.
  if (o.keepAliveMs > 0) (socket as Partial<Socket>).setKeepAlive?.(true, o.keepAliveMs);
  upstream.on('error', (err) => {
    if (!connected) onFailed(err);
    else socket.destroy();
  });
  socket.on('error', () => upstream.destroy());
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => {
    if (connected) socket.destroy();
  });
}
