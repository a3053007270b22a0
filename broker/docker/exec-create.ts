import type Docker from 'dockerode';
import type { ExecSpec } from '../backend/backend.js';
import { sessionMark } from '../backend/session-mark.js';

/** An ExecSpec for one container (a Docker target holds one: `container` does not apply). */
export type ExecOptions = Omit<ExecSpec, 'container'> & { containerId: string };

/**
 * Docker watches a TTY exec's input for a detach sequence (default Ctrl-P Ctrl-Q, and Ctrl-P
 * alone is held back until the next key) and cannot switch that off. Entry sets a sequence no
 * one types: eight alternating Ctrl-^ and Ctrl-@. Only a lone Ctrl-^ is still held until the
 * next key.
 */
export const DETACH_KEYS = 'ctrl-^,ctrl-@,ctrl-^,ctrl-@,ctrl-^,ctrl-@,ctrl-^,ctrl-@';

/** The Engine API's exec-create body for a session's process. */
export function execCreateOptions(o: ExecOptions): Docker.ExecCreateOptions {
  return {
    Cmd: o.cmd,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: o.tty,
    // Engines from API 1.42 open the terminal at this size ([height, width]), so the program
    // never sees 0×0; older ones ignore the field, and the resize sent right after the start
    // sets it there (the kernel signals no SIGWINCH when the size does not change).
    ...(o.tty && o.size ? { ConsoleSize: [o.size.rows, o.size.cols] as [number, number] } : {}),
    DetachKeys: DETACH_KEYS,
    Env: [...o.env, sessionMark(o.sessionId)],
    ...(o.user ? { User: o.user } : {}),
    ...(o.workdir ? { WorkingDir: o.workdir } : {}),
  };
}
