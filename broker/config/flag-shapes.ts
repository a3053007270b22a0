import { withoutCredentials } from '../mask.js';
import { ConfigError } from './config-error.js';
import type { Setting } from './settings.js';

/** How an option is written: what yargs is told of it. */
export type FlagShape = Pick<Setting, 'type' | 'array'>;

/**
 * What yargs lets through without a word, said before it parses: an option that takes a value
 * given none (`--listen` last, or followed by another option: yargs leaves it unset, so the
 * default would apply silently), a setting that holds one value given twice (yargs makes a list
 * of it), and a switch given a value other than true or false (`--dev=maybe` reads as false).
 * Unknown options are left to yargs, which names them.
 */
export function checkFlagShapes(argv: readonly string[], options: Readonly<Record<string, FlagShape>>): void {
  const seen = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    let shape = options[name];
    if (!shape && name.startsWith('no-') && options[name.slice(3)]?.type === 'boolean') {
      name = name.slice(3);
      shape = options[name];
      value ??= 'false';
    }
    if (!shape) continue;
    if (shape.type === 'boolean') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new ConfigError(`--${name}`, `takes no value, or true or false; got ${JSON.stringify(value)}`);
      value ??= 'true';
    } else if (value === undefined) {
      const next = argv[i + 1];
      // A negative number is a value; anything else that starts with a dash is the next option.
      if (next === undefined || next === '--' || (next.startsWith('-') && !/^-\d/.test(next))) throw new ConfigError(`--${name}`, 'needs a value');
      value = next;
      i++;
    }
    if (shape.array) continue;
    const values = seen.get(name) ?? [];
    values.push(value);
    seen.set(name, values);
    if (values.length > 1) throw new ConfigError(`--${name}`, `given more than once (${values.map((v) => JSON.stringify(withoutCredentials(v))).join(', ')}); give it once`);
  }
}
