/**
 * Neither Docker nor Kubernetes can kill an exec, and closing its stream does not end it. Every
 * process a session starts carries `ENTRY_SESSION=<id>` in its environment (children inherit
 * it), so a session's leftovers are found by that mark, by any backend.
 */
export const SESSION_ENV = 'ENTRY_SESSION';

/** The mark of one session's processes, as it stands in their environment. */
export const sessionMark = (sessionId: string): string => `${SESSION_ENV}=${sessionId}`;

/**
 * The scan run inside a target when the broker cannot see its processes itself:
 * `sh -c SCAN_SCRIPT entry-reaper MARK SIGNAL`; needs sh, tr, grep and kill in the image. Any
 * process may exit at any point of the scan (in a busy container, and the scan's own `tr` and
 * `grep` among them): every read and every kill may fail, and must do so silently. Only a kill
 * that succeeded is counted; the count is the only thing on stdout.
 *
 * One `grep -l` over every environment picks the candidates (the mark anywhere in it), and only
 * those are checked for the mark as a whole entry: two processes forked per candidate rather
 * than per process of the container. Not `grep -F`: BusyBox's fixed-string search stops at the
 * first NUL of a line, and an environment is one line of NUL-separated entries; a mark is
 * letters, digits, `_`, `=` and `-`, which a basic regular expression matches as themselves.
 */
export const SCAN_SCRIPT = [
  'm="$1"; sig="$2"; self=$$; found=0',
  'for f in $(grep -ls "$m" /proc/[0-9]*/environ 2>/dev/null); do',
  '  d=${f%/environ}; p=${d#/proc/}; [ "$p" = "$self" ] && continue',
  '  if { tr "\\0" "\\n" < "$f" | grep -qxF "$m"; } 2>/dev/null; then',
  '    kill -s "$sig" "$p" 2>/dev/null && found=$((found+1))',
  '  fi',
  'done',
  'echo "$found"',
].join('\n');

/**
 * Exit codes of a SCAN_SCRIPT whose shell could not run: 126 for a /bin/sh the runtime could not
 * start (none in the image, or one that cannot be executed), 127 for one not found. Neither
 * changes until the image does: the processes cannot be found from inside, and end only with
 * their container.
 */
export const SHELL_CANNOT_RUN: ReadonlySet<number> = new Set([126, 127]);
