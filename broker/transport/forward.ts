import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { peerConnectOptions, type PeerTarget } from './peer-connect.js';

/**
 * The code of the failure a TLS holder gives by ending the connection after the handshake and
 * before a byte of answer: how a Node server refuses a client certificate its CA signed but not
 * for clients (no clientAuth), one that expired, or one from another CA, with no TLS alert.
 */
export const HUNG_UP_AFTER_HANDSHAKE = 'ENTRY_HUNG_UP_AFTER_HANDSHAKE';

/** Marks an upgrade one broker handed to another: from a trusted peer, never handed on again (no loops); from anyone else, ignored. */
export const FORWARDED_BY_HEADER = 'entry-forwarded-by';

/**
 * The subject of the certificate the client showed the broker that handed its upgrade on
 * (percent-encoded): under mTLS the holder sees that broker's certificate on the hop, not the
 * client's. Believed only with FORWARDED_BY_HEADER, from a trusted peer that showed a verified
 * certificate itself, a broker's (broker-certificate.ts).
 */
export const FORWARDED_CLIENT_CERT_HEADER = 'entry-forwarded-client-cert';

/** The client's certificate subject a forwarding broker named; undefined when it named none (or garbage). */
export function forwardedClientCert(req: IncomingMessage): string | undefined {
  const value = req.headers[FORWARDED_CLIENT_CERT_HEADER];
  if (typeof value !== 'string') return undefined;
  try {
    return decodeURIComponent(value) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Hands an upgrade request to another broker untouched, as a TCP proxy would: its request line
 * and headers (credential included: the holder authenticates it itself), what followed them,
 * then bytes both ways until either side closes. X-Forwarded-For gains the peer, for a holder
 * that lists this broker among its trusted proxies, and the client's certificate subject
 * (`clientCert`, seen here only) goes in FORWARDED_CLIENT_CERT_HEADER: what the client sent under
 * either name is dropped, never passed on. `secureContext`: the CA an `https:` holder
 * is trusted by and the certificate shown to it (the system's CAs and none without it);
 * `peerName`: the name its certificate must hold, when not the host of its URL.
 *
 * `onFailed` is called, and the client's socket left untouched for the caller to answer, when
 * the holder fails before it answered a byte (`connected`: after the request went to it): under
 * TLS 1.3 a holder that refuses this broker's certificate says so only after the handshake
 * seemed done, once the request is on its way.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  holderUrl: string,
  brokerId: string,
  o: { keepAliveMs: number; connectTimeoutMs: number; clientCert?: string | undefined } & PeerTarget,
  onFailed: (err: Error, connected: boolean) => void,
): void {
  const url = new URL(holderUrl);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) throw new Error(`not a broker's address: ${holderUrl}`);
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  // An IPv6 literal keeps its brackets in `hostname`; connect wants the address alone.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const upstream: Socket = secure ? tlsConnect({ host, port, ...peerConnectOptions(host, o) }) : netConnect(port, host);
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`];
  let forwardedFor = '';
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === FORWARDED_BY_HEADER || lower === FORWARDED_CLIENT_CERT_HEADER) continue;
    if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor ? `${forwardedFor}, ${req.rawHeaders[i + 1]}` : req.rawHeaders[i + 1]!;
      continue;
    }
    lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
  }
  const peer = req.socket.remoteAddress ?? '';
  lines.push(`X-Forwarded-For: ${forwardedFor ? `${forwardedFor}, ${peer}` : peer}`);
  lines.push(`${FORWARDED_BY_HEADER}: ${brokerId}`);
  // Encoded: a subject may hold any character, a CR LF among them, and a header line may not.
  if (o.clientCert) lines.push(`${FORWARDED_CLIENT_CERT_HEADER}: ${encodeURIComponent(o.clientCert)}`);
  let connected = false;
  let answered = false;
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
  });
  // The client hears nothing until the holder answers: until then, a failure is still the caller's to answer.
  upstream.once('data', (first: Buffer) => {
    answered = true;
    socket.write(first);
    upstream.pipe(socket);
  });
  // Nothing above the bytes here sees this client: the kernel's keepalive finds a vanished one.
  if (o.keepAliveMs > 0) (socket as Partial<Socket>).setKeepAlive?.(true, o.keepAliveMs);
  let failed = false;
  const fail = (err: Error) => {
    if (failed) return;
    failed = true;
    socket.unpipe(upstream);
    socket.off('error', onSocketGone);
    socket.off('close', onSocketGone);
    onFailed(err, connected);
  };
  const hungUp = () => Object.assign(new Error('the holder ended the TLS connection after the handshake, without answering'), { code: HUNG_UP_AFTER_HANDSHAKE });
  upstream.on('error', (err) => {
    if (answered) socket.destroy();
    // A reset is how the hang-up looks when the request was still unread.
    else if (secure && connected && (err as NodeJS.ErrnoException).code === 'ECONNRESET') fail(hungUp());
    else fail(err);
  });
  const onSocketGone = () => upstream.destroy();
  socket.on('error', onSocketGone);
  socket.on('close', onSocketGone);
  upstream.on('close', () => {
    if (answered) socket.destroy();
    // Connected, then closed without a word: the holder would not take it.
    else if (connected) fail(secure ? hungUp() : new Error('the holder closed the connection without answering'));
  });
}
