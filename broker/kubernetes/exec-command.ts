import { SESSION_ENV } from '../backend/session-mark.js';

/**
 * Kubernetes exec takes a command and nothing else: no environment, no working directory, no
 * user. Entry runs the command through a small `sh` script that changes directory, exports the
 * environment (with the session mark the reaper looks for), starts `/bin/sh` afresh with it (see
 * STAGE2) and then `exec`s the command, so the command keeps the exec's PID and its exit code
 * reaches the status channel unchanged.
 *
 * Without v5's stdin close (servers before 1.30 offer only v4), a non-TTY command would never
 * see end of input. There the script puts a pump in front of the command's stdin: Entry sends
 * stdin in chunks, each a line with its length and then its bytes, and a length of 0 for EOF;
 * the pump copies each chunk with `dd iflag=fullblock` (`read` and `dd` never read past what
 * they were asked for, so nothing is lost between them; busybox's `head -c` does) and ends at 0,
 * and the command reads EOF. Each chunk is a `dd` process, so small writes go joined into fewer
 * chunks (see StdinJoin). Once the command has ended, the wrapper says so on stderr (see
 * pump-end.ts) and reads its stdin to the broker's answer, two lengths of 0, before it exits: a
 * command that exits without reading its input ends the exec a round trip later, and the
 * kubelet never closes with stdin unread. The pump is waited for: a process the command left
 * holding its stdin unread keeps it writing, and the broker then ends the session itself, with
 * the status the mark carries (see PUMP_END_WAIT_MS).
 */

/**
 * Writes pumpEndMark(the session), the command's status ($1) and a newline (see pump-end.ts):
 * `\000` is printf's NUL, which no argument can hold.
 */
const PUMP_END = `printf '\\000entry-stdin-end:%s:%d\\n' "$${SESSION_ENV}" "$1"`;

/** The wrapper's name in `ps` ($0). */
const ARG0 = 'entry-exec';

/**
 * The second stage, run by a shell started afresh once the environment is exported: `export`
 * changes what a shell hands on, not its own /proc/PID/environ, and a BusyBox shell runs many
 * commands (awk, seq, dd, …) inside itself rather than exec'ing them. Without the fresh start
 * such a command would run without the mark the reaper looks for, and be left running.
 *
 * Neither stage sets a variable of its own: a client's environment is exported by then, and a
 * `KEY=VALUE` of it must neither change the script's state nor be changed for the command.
 */
const STAGE2 = [
  // $1 1 = stdin through the pump, $2 this script, $3 the final stage's way (see FINAL_ENV);
  // the command follows.
  // The final stage: both shells have set what a shell manages (SHLVL, PWD, PPID, IFS, OPTIND)
  // in the environment by now, so the client's entries, passed again after `env` as the mode,
  // are set once more by env(1) as the command starts. Without env, as exported.
  'entry_exec() {',
  '  if [ "$1" = env ] && command -v env >/dev/null 2>&1; then shift; exec env -- "$@"; fi',
  '  if [ "$1" = env ]; then shift; while case "$1" in *=*) true ;; *) false ;; esac; do shift; done; else shift; fi',
  '  exec "$@"',
  '}',
  'if [ "$1" = 1 ]; then',
  '  shift 2',
  // A dd without iflag=fullblock (an old or slimmed BusyBox) would end the pump at its first
  // chunk, and the command would read a truncated input as a whole one.
  '  if ! dd bs=1 count=0 iflag=fullblock </dev/null >/dev/null 2>&1; then',
  '    echo "entry: stdin for a command without a TTY needs dd in the image, one that takes iflag=fullblock, on this cluster (its exec protocol cannot close stdin before Kubernetes 1.30)" >&2; exit 126',
  '  fi',
  // This shell waits for the pipeline and gives its status: a signal meant for the command must
  // not end it first. Caught (not ignored), so the command itself starts with the default.
  '  trap : HUP INT QUIT TERM USR1 USR2',
  // A background job's stdin is /dev/null unless redirected: hand it the exec's stdin as fd 3.
  // The command's stderr waits on fd 4: this shell's own goes nowhere, as it would write a line
  // ("Terminated", "Killed") when the command dies of a signal, which an exec without the pump
  // (and Docker's) does not.
  '  exec 3<&0 4>&2 2>/dev/null',
  // The pump ignores the signals a client sends the session's processes: killed, it would cut
  // the command's stdin short. It ends at EOF (a length of 0), when the command has gone (its
  // next chunk finds no reader), or with SIGKILL from the reaper.
  // The command runs in a subshell of its own (which resets the caught signals to their
  // defaults) so that the one around it, catching them, lives on to tell its end on the exec's
  // stderr (PUMP_END): `set --` keeps the status without a variable of its own. Both are
  // subshells in every shell (ksh and zsh run a pipeline's last part in the shell itself).
  '  { trap "" HUP INT QUIT TERM USR1 USR2; while IFS= read -r len && [ "$len" -gt 0 ]; do dd bs="$len" count=1 iflag=fullblock || exit; done; } <&3 3<&- 4>&- 2>/dev/null |',
  `  ( trap : HUP INT QUIT TERM USR1 USR2; (entry_exec "$@" 2>&4 4>&-); set -- $?; ${PUMP_END} >&4; exit "$1" ) 3<&-`,
  '  set -- $?',
  // The broker answers the end with two lengths of 0 (the pump may take the first): stdin is
  // read to there, so that nothing it sent is left unread when the exec ends. Deaf to the
  // client's signals, as the pump is: a dd they cut would leave the rest unread.
  '  { trap "" HUP INT QUIT TERM USR1 USR2; while IFS= read -r len && [ "$len" -gt 0 ]; do dd bs="$len" count=1 iflag=fullblock of=/dev/null 2>/dev/null || break; done; } <&3',
  '  exit "$1"',
  'fi',
  'shift 2',
  'entry_exec "$@"',
].join('\n');

/**
 * The final stage's way: `env` when the environment's entries follow it, to be set again by
 * env(1); `-` when none follow. None do when the command's own first word has a `=`, which env
 * would take for one more entry: such a command keeps the environment as exported.
 */
const FINAL_ENV = 'env';
const FINAL_AS_EXPORTED = '-';

/** Ends the environment's KEY=VALUE entries: no entry can be `=` alone. */
const ENV_END = '=';

const WRAPPER = [
  // $1 workdir ('' = the image's), $2 the terminal's first size as COLSxROWS ('' = none), then
  // the KEY=VALUE entries up to ENV_END, then the pump (1 or 0), the second stage, the final
  // stage's way (FINAL_ENV and the entries again, or FINAL_AS_EXPORTED), the command.
  'if [ -n "$1" ]; then cd -- "$1" 2>/dev/null || { printf "entry: cannot change to working directory %s\\n" "$1" >&2; exit 126; }; fi',
  // The kubelet applies a resize only once the exec runs: a command that asks for its size at
  // once would see 0x0. Setting it from inside first closes that race (where stty exists).
  'if [ -n "$2" ]; then stty cols "${2%x*}" rows "${2#*x}" 2>/dev/null; fi',
  'shift 2',
  // `command`: bash as sh (POSIX mode) exits at a special builtin's error, and UID, EUID or
  // PPID are read-only there; such an entry is left out, as bash itself would not take it.
  `while [ "$1" != ${ENV_END} ]; do command export "$1" 2>/dev/null; shift; done`,
  'shift',
  'exec /bin/sh -c "$2" "$0" "$@"',
].join('\n');

export interface WrapOptions {
  cmd: readonly string[];
  env: readonly string[];
  workdir: string;
  /** Feed stdin through the pump (see above). */
  stdinPump: boolean;
  /** A TTY's first size, set before the command starts. */
  size?: { cols: number; rows: number } | undefined;
}

export function wrapCommand(o: WrapOptions): string[] {
  const size = o.size ? `${Math.trunc(o.size.cols)}x${Math.trunc(o.size.rows)}` : '';
  const again = o.env.length > 0 && !(o.cmd[0] ?? '').includes('=');
  const final = again ? [FINAL_ENV, ...o.env] : [FINAL_AS_EXPORTED];
  return ['/bin/sh', '-c', WRAPPER, ARG0, o.workdir, size, ...o.env, ENV_END, o.stdinPump ? '1' : '0', STAGE2, ...final, ...o.cmd];
}

/**
 * Stdin for the pump: each stdin message becomes a chunk, its length in decimal on a line of its
 * own and then its bytes; EOF is a length of 0.
 */
export class StdinEncoder {
  /** The chunk's header; the bytes follow it unchanged. */
  header(length: number): Buffer {
    return Buffer.from(`${length}\n`, 'latin1');
  }

  /** Header and bytes in one buffer (tests; the exec side frames them without this copy). */
  push(data: Uint8Array): Buffer {
    return data.byteLength === 0 ? Buffer.alloc(0) : Buffer.concat([this.header(data.byteLength), data]);
  }

  end(): Buffer {
    return Buffer.from('0\n', 'latin1');
  }
}
