import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const ID = Symbol('entry.requestId');
/** An id from a proxy in front is kept when it looks like one (no log injection). */
const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id, for log lines and the `x-request-id` answer header; made once per request. */
export function requestId(req: IncomingMessage): string {
  const r = req as IncomingMessage & { [ID]?: string };
  if (!r[ID]) {
    const given = req.headers['x-request-id'];
    r[ID] = typeof given === 'string' && SANE_ID.test(given) ? given : randomUUID();
  }
  return r[ID];
}
