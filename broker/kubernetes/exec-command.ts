/**
 * Kubernetes exec takes a command and nothing else: no environment, no working directory, no
 * user. Entry runs the command through a small `sh` script that changes directory, exports the
 * environment (with the session mark the reaper looks for) and then `exec`s the command, so the
 * command keeps the exec's PID and its exit code reaches the status channel unchanged.
 *
 * Without v5's stdin close (servers before 1.30 offer only v4), a non-TTY command would never
 * see end of input. There the script puts a pump in front of the command's stdin: Entry sends
 * stdin as base64 lines and empty lines for EOF; `sed` stops at the first, `base64 -d`
 * then ends, and the command reads EOF. The pump runs in the background, so a command that exits
 * without reading its input ends the exec at once.
 */

/** The wrapper's name in `ps` ($0). */
const ARG0 = 'entry-exec';

const WRAPPER = [
  // $1 workdir ('' = the image's), $2 how many KEY=VALUE follow, $3 1 = stdin through the pump,
  // $4 the terminal's first size as COLSxROWS ('' = none).
  'if [ -n "$1" ]; then cd -- "$1" 2>/dev/null || { printf "entry: cannot change to working directory %s\\n" "$1" >&2; exit 126; }; fi',
  // The kubelet applies a resize only once the exec runs: a command that asks for its size at
  // once would see 0x0. Setting it from inside first closes that race (where stty exists).
  'if [ -n "$4" ]; then stty cols "${4%x*}" rows "${4#*x}" 2>/dev/null; fi',
  'n=$2; pump=$3; shift 4',
  'while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n-1)); done',
  'if [ "$pump" = 1 ]; then',
  '  if ! command -v sed >/dev/null 2>&1 || ! command -v base64 >/dev/null 2>&1; then',
  '    echo "entry: stdin for a command without a TTY needs sed and base64 in the image on this cluster (its exec protocol cannot close stdin before Kubernetes 1.30)" >&2; exit 126',
  '  fi',
  // A background job's stdin is /dev/null unless redirected: hand it the exec's stdin as fd 3.
  '  exec 3<&0',
  '  { { sed -e "/^\\$/q" <&3 3<&- | base64 -d 3<&-; } 2>/dev/null & } | exec "$@" 3<&-',
  '  exit $?',
  'fi',
  'exec "$@"',
].join('\n');

export interface WrapOptions {
  cmd: readonly string[];
  env: readonly string[];
  workdir: string;
  /** Feed stdin through the base64 pump (see above). */
  stdinPump: boolean;
  /** A TTY's first size, set before the command starts. */
  size?: { cols: number; rows: number } | undefined;
}

export function wrapCommand(o: WrapOptions): string[] {
  const size = o.size ? `${Math.trunc(o.size.cols)}x${Math.trunc(o.size.rows)}` : '';
  return ['/bin/sh', '-c', WRAPPER, ARG0, o.workdir, String(o.env.length), o.stdinPump ? '1' : '0', size, ...o.env, ...o.cmd];
}

/**
 * Stdin for the pump: base64 in lines, each a whole number of 3-byte groups (the rest waits for
 * the next write), so that only the very last line carries padding; EOF is two empty lines.
 */
export class StdinEncoder {
  private rest: Buffer = Buffer.alloc(0);

  push(data: Uint8Array): Buffer {
    const all = this.rest.length > 0 ? Buffer.concat([this.rest, data]) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const whole = all.length - (all.length % 3);
    this.rest = Buffer.from(all.subarray(whole));
    if (whole === 0) return Buffer.alloc(0);
    return Buffer.from(`${all.subarray(0, whole).toString('base64')}\n`, 'latin1');
  }

  end(): Buffer {
    const tail = this.rest.length > 0 ? `${this.rest.toString('base64')}\n` : '';
    this.rest = Buffer.alloc(0);
    // sed reads a line ahead (for its `$` address) before acting on the empty one: give it that
    // line, since stdin itself stays open.
    return Buffer.from(`${tail}\n\n`, 'latin1');
  }
}
