import type { IncomingMessage } from 'node:http';

/** Everything the upgrade request says about who is calling and what they want. */
export interface UpgradeRequest {
  token: string | undefined;
  app: string | undefined;
  proc: string | undefined;
  instance: string | undefined;
  termType: string;
  protocol2: boolean;
}

const DEFAULT_TERM = 'xterm-256color';

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads the original headers (access-token, app-name, …), Authorization: Bearer and entry-protocol. */
export function readUpgradeRequest(req: IncomingMessage): UpgradeRequest {
  let token = header(req, 'access-token');
  const auth = header(req, 'authorization');
  if (!token && auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) token = m[1];
  }
  const term = header(req, 'term-type');
  return {
    token,
    app: header(req, 'app-name'),
    proc: header(req, 'proc-name'),
    instance: header(req, 'instance-no'),
    termType: term && /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? term : DEFAULT_TERM,
    protocol2: header(req, 'entry-protocol') === '2',
  };
}
