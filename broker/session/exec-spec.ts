import { decodeExecSpec, type ExecSpec as StartSpec, MAX_TERMINAL_SIDE } from '../../proto/codec.js';
import type { ExecSpec } from '../backend/backend.js';
import { toEngineCmd } from '../backend/argv.js';
import { SESSION_ENV } from '../backend/session-mark.js';
import { EntryError } from '../errors.js';

/** What to start in the target: the backend's ExecSpec less what the session adds. */
export interface ProcessPlan extends Pick<ExecSpec, 'cmd' | 'tty' | 'env' | 'user' | 'workdir' | 'size' | 'container'> {
  /** The command as the user gave it, for logs. */
  argv: string[];
  interactive: boolean;
  /** The client acknowledges output and may resume the session after a broken connection. */
  resumable?: boolean;
}

/** A Kubernetes container name (DNS label). */
const CONTAINER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** bash when the image has it (what the original always ran), else sh. */
export const INTERACTIVE_SHELL = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi'];

const ENV_ENTRY = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** The original protocol: always the interactive shell with a TTY. */
export function interactivePlan(term: string): ProcessPlan {
  return { cmd: INTERACTIVE_SHELL, tty: true, env: [`TERM=${term}`], user: '', workdir: '', size: undefined, argv: [], interactive: true, container: '' };
}

/** Protocol 2: the plan from a START message. Throws EntryError on a bad spec. */
export function planFromStart(content: Uint8Array, headerTerm: string): ProcessPlan {
  let spec: StartSpec;
  try {
    spec = decodeExecSpec(content);
  } catch (err) {
    throw new EntryError('ENTRY_BAD_FRAME', `START: ${(err as Error).message}`);
  }
  for (const kv of spec.env) {
    if (!ENV_ENTRY.test(kv) || kv.includes('\0')) throw new EntryError('ENTRY_BAD_REQUEST', `env entry must be KEY=VALUE: ${JSON.stringify(kv)}`);
    if (kv.startsWith(`${SESSION_ENV}=`)) throw new EntryError('ENTRY_BAD_REQUEST', `${SESSION_ENV} is reserved`);
  }
  if (spec.user.includes('\0') || spec.workdir.includes('\0')) throw new EntryError('ENTRY_BAD_REQUEST', 'NUL in user or workdir');
  if (spec.container && !CONTAINER_NAME.test(spec.container)) throw new EntryError('ENTRY_BAD_REQUEST', `container name invalid: ${JSON.stringify(spec.container)}`);
  const interactive = spec.argv.length === 0;
  const term = spec.term || headerTerm;
  const env = [...(spec.tty ? [`TERM=${term}`] : []), ...spec.env];
  return {
    cmd: interactive ? INTERACTIVE_SHELL : toEngineCmd(spec.argv),
    tty: spec.tty,
    env,
    user: spec.user,
    workdir: spec.workdir,
    size: spec.cols > 0 && spec.rows > 0 ? { cols: Math.min(spec.cols, MAX_TERMINAL_SIDE), rows: Math.min(spec.rows, MAX_TERMINAL_SIDE) } : undefined,
    argv: spec.argv.map((a) => Buffer.from(a).toString('utf8')),
    interactive,
    container: spec.container,
    resumable: spec.resumable === true,
  };
}
