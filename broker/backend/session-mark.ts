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
 * `sh -c SCAN_SCRIPT entry-reaper SIGNAL MARK...`; needs sh, tr, grep and kill in the image. It
 * prints one count per mark, in the order given, separated by spaces: how many processes carrying
 * that mark got the signal. Any process may exit at any point of the scan (in a busy container,
 * and the scan's own `tr` and `grep` among them): every read and every kill may fail, and must do
 * so silently. Only a kill that succeeded is counted; the counts are the only thing on stdout.
 *
 * One `grep -l` over every environment picks the candidates (any mark anywhere in it), and only
 * those are checked for a mark as a whole entry: two processes forked per candidate rather
 * than per process of the container, however many marks. A process carrying several of the
 * marks is signalled once and counted for each. Not `grep -F` for the first pass: BusyBox's
 * fixed-string search stops at the first NUL of a line, and an environment is one line of
 * NUL-separated entries; a mark is letters, digits, `_`, `=` and `-` (SCAN_MARK), which a
 * basic regular expression matches as themselves, and which the unquoted `$pat` neither splits
 * nor globs. Counters are `c1`, `c2`, … by the mark's place (sh has no arrays): `eval` only ever
 * sees those names and numbers, never a mark.
 */
export const SCAN_SCRIPT = [
  'sig="$1"; shift; [ "$#" -gt 0 ] || exit 2',
  'self=$$; pat=; i=0',
  // A newline, to find a mark among the matched lines.
  'nl="',
  '"',
  'for m do i=$((i+1)); pat="$pat -e $m"; eval "c$i=0"; done',
  'for f in $(grep -ls $pat /proc/[0-9]*/environ 2>/dev/null); do',
  '  d=${f%/environ}; p=${d#/proc/}; [ "$p" = "$self" ] && continue',
  '  hits=$({ tr "\\0" "\\n" < "$f" | grep -xF $pat; } 2>/dev/null) || continue',
  '  kill -s "$sig" "$p" 2>/dev/null || continue',
  '  i=0',
  '  for m do i=$((i+1)); case "$nl$hits$nl" in *"$nl$m$nl"*) eval "c$i=\\$((c$i+1))";; esac; done',
  'done',
  'out=; i=0',
  'for m do i=$((i+1)); eval "out=\\"\\$out\\${out:+ }\\$c$i\\""; done',
  'echo "$out"',
].join('\n');

/** A mark the scan takes: the session mark of an id of the shape session ids have (hasSessionIdShape). */
export const SCAN_MARK = new RegExp(`^${SESSION_ENV}=[A-Za-z0-9-]{1,64}$`);

/**
 * Exit codes of a SCAN_SCRIPT whose shell could not run: 126 for a /bin/sh the runtime could not
 * start (none in the image, or one that cannot be executed), 127 for one not found. Neither
 * changes until the image does: the processes cannot be found from inside, and end only with
 * their container.
 */
export const SHELL_CANNOT_RUN: ReadonlySet<number> = new Set([126, 127]);

/** The runtime's word that the scan's /bin/sh is not in the image, or cannot be executed there. */
const NO_SHELL = /"?\/bin\/sh"?: (?:stat [^:]*: )?(?:no such file or directory|executable file not found|permission denied)/i;

/** The runtime could not start the exec at all (it says why after this). */
const RUNTIME_FAILED = /OCI runtime exec failed/i;

/**
 * Whether a scan that gave no counts (exit `code`, `why` what it and the runtime said) cannot run
 * in this image until the image changes. 126 is also the runtime's code for an exec it could not
 * start for a passing reason: a container at its pids limit ("read init-p: connection reset by
 * peer", a session forking without end is one), or frozen outside the engine ("cannot exec in a
 * paused container"). Those are failures the next try may get past, not a missing shell.
 */
export function shellCannotRun(code: number | undefined, why: string): boolean {
  if (NO_SHELL.test(why)) return true;
  return code !== undefined && SHELL_CANNOT_RUN.has(code) && !RUNTIME_FAILED.test(why);
}
