import type { IncomingMessage, ServerResponse } from 'node:http';
import { EntryError } from '../errors.js';
import { writeError } from './respond.js';

/** What a route accepts as a request body; checked before authentication or any store call. */
export interface BodySpec {
  /** Largest body in bytes; 0 means the route takes no body. */
  limit: number;
  /** The media type the body must declare (parameters such as charset are allowed). */
  type?: string;
}

/** Routes without a body: GET, DELETE. A body sent anyway is refused, not read. */
export const NO_BODY: BodySpec = { limit: 0 };

/**
 * JSON bodies of the API: a few small fields (a target, a jti). 16 KiB leaves room for long
 * names while bounding what an unauthenticated caller can make the broker hold.
 */
export const JSON_BODY: BodySpec = { limit: 16 * 1024, type: 'application/json' };

/** The request ended before its body did (client gone): nothing to answer. */
export class BodyAborted extends Error {
  constructor() {
    super('request body aborted');
  }
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function declaredLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  return raw === undefined ? undefined : Number(raw);
}

/**
 * Reads a body within `spec`, refusing early: a declared length over the limit gets 413 before a
 * byte is read, a wrong media type 415, a body that grows past the limit 413 at that chunk, one
 * that does not arrive in time 408. Bytes beyond the limit are never buffered.
 */
export function readBody(req: IncomingMessage, spec: BodySpec, timeoutMs: number): Promise<Buffer> {
  const length = declaredLength(req);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const hasBody = chunked || (length !== undefined && length > 0);
  if (!hasBody) return Promise.resolve(Buffer.alloc(0));
  if (spec.limit === 0) return Promise.reject(new EntryError('ENTRY_BODY_TOO_LARGE', 'this route takes no body'));
  if (length !== undefined && length > spec.limit) return Promise.reject(new EntryError('ENTRY_BODY_TOO_LARGE', `limit ${spec.limit} bytes`));
  if (spec.type && mediaType(req) !== spec.type) return Promise.reject(new EntryError('ENTRY_UNSUPPORTED_MEDIA_TYPE', `send ${spec.type}`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | undefined, body?: Buffer) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('aborted', onAborted).off('close', onClose).off('error', onError);
      if (err) {
        // Nothing more is taken in until the refusal is answered (see `refuseBody`).
        req.pause();
        reject(err);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > spec.limit) return finish(new EntryError('ENTRY_BODY_TOO_LARGE', `limit ${spec.limit} bytes`));
      chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, Buffer.concat(chunks, size));
    const onAborted = () => finish(new BodyAborted());
    const onClose = () => {
      if (!req.complete) finish(new BodyAborted());
    };
    const onError = () => finish(new BodyAborted());
    const timer = setTimeout(() => finish(new EntryError('ENTRY_BODY_TIMEOUT', `the body did not arrive within ${timeoutMs} ms`)), timeoutMs);
    req.on('data', onData).on('end', onEnd).on('aborted', onAborted).on('close', onClose).on('error', onError);
  });
}

/**
 * After a refusal, a client that sends nothing more of its body for this long is taken to be
 * done and the connection is closed. An uploader's gaps are a busy event loop or a scheduling
 * delay on a loaded machine, tens of milliseconds; a second leaves room for many times that.
 */
export const REFUSED_BODY_IDLE_MS = 1_000;

/**
 * Answers a refused body and closes the connection only once the client is done sending it.
 *
 * Closing a socket with unread bytes makes the kernel reset the connection; a client that is
 * still writing then fails its next write and drops the answer it had not read yet (a 413 that
 * never arrives). So the answer goes out whole, with `connection: close`, and the rest of the
 * body is read and dropped (never kept) until it ends, the client closes, nothing arrives for
 * `REFUSED_BODY_IDLE_MS` or `lingerMs` has passed; then the response ends and the connection with it.
 */
export function refuseBody(req: IncomingMessage, res: ServerResponse, err: EntryError, lingerMs: number): void {
  writeError(res, err, { connection: 'close' });
  if (req.readableEnded || req.destroyed) {
    res.end();
    return;
  }
  let idle: NodeJS.Timeout | undefined;
  const close = () => {
    clearTimeout(idle);
    clearTimeout(total);
    req.off('data', onData).off('end', close).off('close', close).off('error', close);
    res.end();
  };
  const onData = () => {
    clearTimeout(idle);
    idle = setTimeout(close, REFUSED_BODY_IDLE_MS);
  };
  const total = setTimeout(close, lingerMs);
  req.on('data', onData).on('end', close).on('close', close).on('error', close);
  onData();
  req.resume();
}

/** Drops a leading byte order mark, which a JSON reader may ignore (RFC 8259 §8.1) and some editors write. */
const utf8 = new TextDecoder('utf-8');

/** A body read with `readBody`, parsed as a JSON object (or `null` for an empty body). */
export function parseJsonObject(body: Buffer): Record<string, unknown> | null {
  if (body.length === 0) return null;
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(body));
  } catch {
    throw new EntryError('ENTRY_BAD_REQUEST', 'body is not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new EntryError('ENTRY_BAD_REQUEST', 'body must be a JSON object');
  return value as Record<string, unknown>;
}
