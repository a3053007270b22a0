import type { IncomingMessage } from 'node:http';
import { PASSING_REFUSALS } from '../../proto/passing-refusals.js';
import { ClientError } from './client-error.js';
import { refusalFromBody } from './refusal-body.js';

/**
 * How much of a refused upgrade's body is read: the broker's JSON (`{error, message}`, see
 * broker/http/raw-answer.ts) is a few hundred bytes; past 64 KiB it is some other server's page,
 * not worth holding.
 */
export const REFUSAL_BODY_MAX_BYTES = 64 * 1024;

/** How long that body may take once the status has come: the broker writes it with the status. */
export const REFUSAL_BODY_WAIT_MS = 2_000;

/**
 * Why the broker refused an upgrade with an HTTP answer: the registry's code and message from
 * its JSON body (a wrong path's ENTRY_NOT_FOUND, a token refused before the upgrade), or
 * ENTRY_CONNECT_FAILED naming the status when the body carries none (a proxy's page). Either
 * way with the status, for the CLI's hint. Never rejects.
 */
export function refusalOf(res: IncomingMessage): Promise<ClientError> {
  const status = res.statusCode;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      res.off('data', onData);
      res.resume();
      resolve(refusalFromBody(Buffer.concat(chunks).toString('utf8'), status) ?? new ClientError('ENTRY_CONNECT_FAILED', `broker answered HTTP ${status} ${res.statusMessage ?? ''}`.trim(), status));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= REFUSAL_BODY_MAX_BYTES) chunks.push(chunk);
      else {
        chunks.length = 0;
        settle();
      }
    };
    const timer = setTimeout(settle, REFUSAL_BODY_WAIT_MS);
    res.on('data', onData);
    res.once('end', settle);
    res.once('close', settle);
    res.once('error', settle);
  });
}

/**
 * The refusal that ends a session being resumed, when a resume try's failure to open is one: the
 * broker's own refusal of the upgrade (its registry code, from the body of its HTTP answer) that
 * does not pass (see PASSING_REFUSALS). Undefined for the rest, tried again within the grace
 * period: no answer (no route, refused, reset, a timeout) and an answer without the broker's code
 * (a proxy's page: refusalOf names its status, as ENTRY_CONNECT_FAILED).
 */
export function lastingRefusal(err: unknown): ClientError | undefined {
  if (!(err instanceof ClientError) || err.httpStatus === undefined || err.code === 'ENTRY_CONNECT_FAILED') return undefined;
  return PASSING_REFUSALS.has(err.code) ? undefined : err;
}
