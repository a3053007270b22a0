import { randomBytes } from 'node:crypto';
import type { ExecSpec } from '../../broker/backend/backend.js';

/**
 * ExecSpecs for tests that drive a backend directly: a shell without a TTY unless told, each under
 * a session id of its own (`prefix`, this process, a count, a random tail: runs never share one).
 */
export function execSpecs(prefix: string, terminateGraceMs: number): (over?: Partial<ExecSpec>) => ExecSpec {
  let count = 0;
  return (over = {}) => ({
    sessionId: `${prefix}-${process.pid}-${++count}-${randomBytes(3).toString('hex')}`,
    cmd: ['sh'],
    tty: false,
    env: [],
    user: '',
    workdir: '',
    size: undefined,
    terminateGraceMs,
    openTimeoutMs: 30_000,
    container: '',
    ...over,
  });
}
