import { ClientError } from '../protocol/client-error.js';

/**
 * A yargs `coerce` for an option that takes one value: given twice, the last one counts (as
 * with docker and kubectl, so that `enter $DEFAULTS -u app` overrides); given without a value
 * (`-u` at the end, `-u ""`, an empty variable), it is an error rather than the default, which
 * could be another user or another broker.
 */
export function oneValue(flag: string): (v: string | string[]) => string {
  return (v) => {
    const value = Array.isArray(v) ? v.at(-1) : v;
    if (value === undefined || value === '') throw new ClientError('ENTRY_BAD_REQUEST', `${flag} needs a value`);
    return value;
  };
}

/**
 * A yargs `coerce` for a repeatable option (`-e A=1 -e B=2`): each occurrence needs its value.
 * yargs gives an occurrence without one as an empty array.
 */
export function manyValues(flag: string): (v: unknown) => string[] {
  return (v) => {
    const values = Array.isArray(v) && v.length === 0 ? [v] : [v].flat();
    return values.map((value) => {
      if (typeof value !== 'string' || value === '') throw new ClientError('ENTRY_BAD_REQUEST', `${flag} needs a value`);
      return value;
    });
  };
}

/** `oneValue` for a number, which must also be finite and at least `min`. */
export function oneNumber(flag: string, min: number): (v: number | number[]) => number {
  return (v) => {
    const value = Array.isArray(v) ? v.at(-1) : v;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) throw new ClientError('ENTRY_BAD_REQUEST', `${flag} wants a number from ${min}`);
    return value;
  };
}

/** An on/off environment variable: unset or empty for `fallback`. */
export function envSwitch(name: string, fallback: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ClientError('ENTRY_BAD_REQUEST', `${name} wants 1 or 0 (true/false, yes/no, on/off), got ${JSON.stringify(env[name])}`);
}

/**
 * Which of -t and -T came last on the command line (ssh's rule): `true` for -t, `false` for -T,
 * undefined for neither. Short flags may be bundled (`-tu root` is not: `-u` takes a value).
 */
export function lastTtyFlag(args: readonly string[]): boolean | undefined {
  let last: boolean | undefined;
  for (const a of args) {
    const spelled = /^--(no-)?tty(?:=(true|false))?$/.exec(a);
    if (spelled) last = (spelled[2] !== 'false') !== Boolean(spelled[1]);
    else if (/^-[A-Za-z]+$/.test(a)) {
      for (const ch of a.slice(1)) {
        if (ch === 't') last = true;
        else if (ch === 'T') last = false;
      }
    }
  }
  return last;
}

/** Options whose value is the word after them (`-u root`), for reading a command line by hand. */
export const VALUE_OPTIONS: ReadonlySet<string> = new Set(['-b', '--broker', '--ca-file', '--cert', '--key', '-u', '--user', '-w', '--workdir', '-e', '--env', '-c', '--container', '--escape', '--token', '--port', '--timeout', '--speed', '--idle-limit']);

/** The subcommands: offered by completion where an app name may go, and an app's name may shadow one. */
export const SUBCOMMANDS: readonly string[] = ['broker', 'completion', 'exec', 'kill', 'login', 'logout', 'ls', 'replay', 'sessions', 'status', 'watch'];
