import { randomUUID } from 'node:crypto';
import { type IncomingMessage, maxHeaderSize, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { EntryError, type ErrorCode, ignoreError } from '../errors.js';
import type { Logger } from '../log.js';
import { normalizeAddress } from '../transport/client-address.js';
import { rawAnswer } from './raw-answer.js';
import { loggedUrlPath, refusedRequest, targetOverLimit } from './refused-request.js';
import { sendError } from './respond.js';

/** Node's parser errors that name what was wrong with the request; the rest get a plain 400. */
const PARSE_REFUSALS: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'ENTRY_HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'ENTRY_BODY_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'ENTRY_REQUEST_TIMEOUT',
};

/** A refusal written straight to a connection no request object answers, then the connection closed. */
function writeRefusal(socket: Duplex, err: EntryError, request?: string): void {
  socket.end(rawAnswer(err, request, { 'Cache-Control': 'no-store' }), () => socket.destroy());
}

/** What Node hands the 'clientError' listener: the error, with the bytes its parser refused. */
type ClientError = Error & { code?: string; rawPacket?: Buffer };

/**
 * A request Node's parser refused before the broker saw it (a malformed request line or header,
 * a bad chunk, headers or URL over the size limit, a request not in within the timeouts): Node
 * would answer a bare status; this answers it as every other refusal, JSON with the registry's
 * code and a request id, and gives it its `http` log line as every answered request has. Nothing
 * is written when an answer to an earlier request on the connection has begun.
 */
export function answerClientErrors(log: Logger): (err: ClientError, socket: Duplex) => void {
  return (err, socket) => {
    socket.on('error', ignoreError);
    // Node keeps no public record of the response under way on a connection; its own handler reads
    // this one to know whether an answer has begun (keep-alive), after which nothing may be written.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    const parseError = err.code !== undefined && (err.code.startsWith('HPE_') || err.code in PARSE_REFUSALS);
    if (!socket.writable || !parseError || (inFlight && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    const address = (socket as Partial<Socket>).remoteAddress;
    // Neither listener sets its own maxHeaderSize: Node's (--max-http-header-size) applies.
    const uriTooLong = err.code === 'HPE_HEADER_OVERFLOW' && targetOverLimit(err.rawPacket, (socket as Partial<Socket>).bytesRead, maxHeaderSize);
    const code = uriTooLong ? 'ENTRY_URI_TOO_LONG' : (PARSE_REFUSALS[err.code!] ?? 'ENTRY_BAD_REQUEST');
    const refusal = new EntryError(code, code === 'ENTRY_BAD_REQUEST' ? 'malformed HTTP request' : undefined);
    // No header is believed (the parser refused them): a fresh id, and the connection's own peer.
    const request = randomUUID();
    log.info('http', { request, ...refusedRequest(err.rawPacket), status: refusal.status, code, refused: err.code, ...(address !== undefined ? { remote: normalizeAddress(address) } : {}) });
    writeRefusal(socket, refusal, request);
  };
}

/**
 * CONNECT asks for a tunnel: the broker is no proxy. Node would close the connection without a
 * word; this answers 405 with a request id and its `http` log line, as every refusal has.
 */
export function refuseConnect(log: Logger): (req: IncomingMessage, socket: Duplex) => void {
  return (req, socket) => {
    const refusal = new EntryError('ENTRY_METHOD_NOT_ALLOWED', 'CONNECT: this is not a proxy');
    const request = randomUUID();
    const address = (socket as Partial<Socket>).remoteAddress;
    // The target is an authority (host:port), cut as any logged path is; a query (where a ticket
    // may be) is dropped, as from every logged path.
    const path = loggedUrlPath(req.url);
    log.info('http', { request, method: 'CONNECT', path, status: refusal.status, code: refusal.code, ...(address !== undefined ? { remote: normalizeAddress(address) } : {}) });
    writeRefusal(socket, refusal, request);
  };
}

/**
 * An HTTP/1.1 request without Host, which servers must refuse (RFC 9112 §3.2). Node's own check
 * answers a bare 400; the listeners turn it off (`requireHostHeader: false`) and refuse here,
 * with the registry's code. True when refused.
 */
export function refuseHostless(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.headers.host !== undefined || req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor === 0)) return false;
  sendError(res, new EntryError('ENTRY_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header'), { connection: 'close' });
  return true;
}
