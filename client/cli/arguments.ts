import { hasSessionIdShape } from '../../proto/session-id.js';
import { ClientError } from '../protocol/client-error.js';
import { closeNames, didYouMean, leading } from './suggest.js';

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

/**
 * The id of `enter kill|watch|replay`, as the broker's routes take it (letters, digits and `-`,
 * up to 64): anything else (`''`, a pasted id with a blank) is refused here, by name, rather than
 * sent for the broker to answer that it has no such API.
 */
export function sessionId(id: string): string {
  if (!hasSessionIdShape(id)) throw new ClientError('ENTRY_BAD_REQUEST', `not a session id: ${JSON.stringify(id)} (enter sessions lists them)`);
  return id;
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

/** The words each command cannot do without, in order (`exec` is also the default command). */
const REQUIRED_WORDS: Readonly<Record<string, readonly string[]>> = {
  exec: ['<app>', '<proc>', '<instance>'],
  kill: ['<id>'],
  watch: ['<id>'],
  replay: ['<id>'],
  'broker add': ['<name>', '<url>'],
  'broker use': ['<name>'],
  'broker rm': ['<name>'],
  'broker remove': ['<name>'],
};

/** Words other tools take as commands that are flags here (`kubectl version`, `docker version`). */
const FLAG_WORDS: Readonly<Record<string, string>> = { version: '--version' };

/** The broker profile commands, for a misspelt one. */
const BROKER_COMMANDS: readonly string[] = ['add', 'use', 'ls', 'list', 'rm', 'remove'];

/**
 * The words of the command line that yargs calls unknown by name (`l` for `-la`, `foo` for
 * `--foo=1`), as they were written and in their order: the user recognises their own words.
 */
export function asWritten(names: readonly string[], ours: readonly string[]): string[] {
  const at = new Set<number>();
  const rest: string[] = [];
  for (const name of names) {
    const i = ours.findIndex((a) => a === name || a === `--${name}` || a.startsWith(`--${name}=`) || (name.length === 1 && /^-[A-Za-z]+$/.test(a) && a.includes(name)));
    if (i >= 0) at.add(i);
    else rest.push(name);
  }
  return [...[...at].sort((x, y) => x - y).map((i) => ours[i]!), ...rest];
}

/** `Did you mean enter ls? ` for a misspelt command, opening the hint; or nothing. */
const slipFor = (typed: string, known: readonly string[], prefix: string): string => leading(didYouMean(closeNames(typed, known), { prefix, capital: true }));

/**
 * A usage error as the CLI says it, from the parser's message and the arguments before `--`:
 * what is missing or misplaced in enter's own words, and the next step.
 */
export function usageError(msg: string, ours: readonly string[]): { message: string; hint: string } {
  const words = ours.filter((a, i) => !a.startsWith('-') && !VALUE_OPTIONS.has(ours[i - 1] ?? ''));
  const first = words[0];
  const subcommand = first !== undefined && SUBCOMMANDS.includes(first) && first !== 'exec' ? first : undefined;
  const unknown = /^Unknown arguments?: (.*)$/.exec(msg);
  if (unknown) {
    const written = asWritten(unknown[1]!.split(', '), ours);
    const options = written.filter((w) => w.startsWith('-'));
    const extra = written.filter((w) => !w.startsWith('-'));
    if (subcommand === 'broker' && extra.length) {
      return { message: `no broker command ${extra[0]}`, hint: `${slipFor(extra[0]!, BROKER_COMMANDS, 'enter broker ')}The broker commands: enter broker add|use|ls|rm (see enter broker --help).` };
    }
    if (subcommand && extra.length) return { message: `unknown arguments: ${written.join(' ')}`, hint: `For an app named ${subcommand}: enter exec ${subcommand} PROC INSTANCE. Else see enter ${subcommand} --help.` };
    if (subcommand) return { message: `unknown option${options.length > 1 ? 's' : ''} ${options.join(' ')}`, hint: `See enter ${subcommand} --help for its options.` };
    if (extra.length) return { message: `unknown arguments: ${written.join(' ')}`, hint: 'A command to run goes after --: enter APP PROC INSTANCE -- CMD ARGS… (see enter --help).' };
    return {
      message: `unknown option${options.length > 1 ? 's' : ''} ${options.join(' ')}`,
      hint: `A command's own options go after --: enter APP PROC INSTANCE -- CMD ${options.map((o) => o.replace(/=.*/, '')).join(' ')} (enter's own are in enter --help).`,
    };
  }
  // Words left out (`enter demo web`, `enter kill`): named, rather than counted.
  const short = /^Not enough non-option arguments: got (\d+), need at least (\d+)$/.exec(msg);
  const command = first === 'broker' ? `broker ${words[1] ?? ''}` : first !== undefined && SUBCOMMANDS.includes(first) ? first : 'exec';
  const required = REQUIRED_WORDS[command];
  if (short && required?.length === Number(short[2])) {
    const missing = required.slice(Number(short[1]));
    const named = missing.length > 1 ? `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)}` : missing.join('');
    // `enter lss`, `enter sesions`: a misspelt subcommand reads as an app without its proc.
    const flagWord = first === undefined ? undefined : FLAG_WORDS[first];
    const slip = command !== 'exec' || first === undefined || first === 'exec' ? '' : flagWord ? leading(didYouMean([flagWord], { prefix: 'enter ', capital: true })) : slipFor(first, SUBCOMMANDS, 'enter ');
    const usage = command === 'exec' ? 'enter <app> <proc> <instance> [-- <cmd…>]; enter ls lists what you may enter.' : `enter ${command} ${required.join(' ')} (see enter ${command} --help).`;
    return { message: `missing ${named}`, hint: `${slip}Usage: ${usage}` };
  }
  return { message: msg, hint: 'Run enter --help for usage.' };
}
