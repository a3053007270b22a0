import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FaultReporter, FaultSite } from '../fault.js';
import { loggedUrlPath } from './refused-request.js';
import { requestId } from './request-id.js';
import { sendJson } from './respond.js';
import { ignoreError } from '../errors.js';

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/**
 * Answers a request whose handler failed unexpectedly: 500 `ENTRY_INTERNAL` with the request id
 * (to find the log line), or, when an answer had already begun, the connection is cut.
 */
function answerInternal(req: IncomingMessage, res: ServerResponse): void {
  try {
    if (res.headersSent || res.writableEnded) {
      res.destroy();
      return;
    }
    sendJson(res, 500, { error: 'ENTRY_INTERNAL', message: 'internal error', request: requestId(req) }, { connection: 'close' });
  } catch {
    res.destroy();
  }
}

/**
 * The fault boundary of one HTTP request: whatever the handler throws, synchronously or later,
 * stays inside this request. It is reported once and the caller gets a 500.
 */
export function httpBoundary(where: FaultSite, handler: RequestHandler, report: FaultReporter): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const fail = (err: unknown) => {
      report(where, err, { request: requestId(req), method: req.method, path: loggedUrlPath(req.url) });
      answerInternal(req, res);
    };
    try {
      const pending = handler(req, res);
      if (pending) pending.catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}

type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** The same boundary for an upgrade: a fault answers 500 on the raw socket and closes it. */
export function upgradeBoundary(handler: UpgradeHandler, report: FaultReporter): UpgradeHandler {
  return (req, socket, head) => {
    // Node stops listening for errors on a socket it hands over for an upgrade. Every answer
    // written to it (the handler's refusals, the 500 below) fails when the client has reset the
    // connection, and an error nobody hears ends the process.
    socket.on('error', ignoreError);
    try {
      handler(req, socket, head);
    } catch (err) {
      report('upgrade', err, { request: requestId(req), path: loggedUrlPath(req.url) });
      if (!socket.writable) return void socket.destroy();
      socket.end(`HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\ncontent-length: 0\r\nx-request-id: ${requestId(req)}\r\n\r\n`, () => socket.destroy());
    }
  };
}
