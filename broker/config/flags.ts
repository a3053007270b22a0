import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError, type RawSettings } from './config.js';
import { checkFlagShapes } from './flag-shapes.js';
import { SETTINGS, yargsOption } from './settings.js';

/**
 * The broker's options, from the settings table. yargs fills in no defaults (parseConfig does),
 * so a flag left out can still come from its ENTRY_* variable or the config file.
 */
export const OPTIONS = Object.fromEntries(Object.entries(SETTINGS).map(([name, s]) => [name, yargsOption(s)]));

/**
 * Reads the broker's settings. Each option comes from its flag, else its ENTRY_* variable
 * (`--jwt-public-key` ← ENTRY_JWT_PUBLIC_KEY), else the JSON file given by --config.
 */
export function readSettings(argv = hideBin(process.argv), env: NodeJS.ProcessEnv = process.env): RawSettings {
  checkFlagShapes(argv, { ...OPTIONS, config: { type: 'string' } });
  const parsed = yargs(argv)
    .scriptName('entry-broker')
    .usage('$0 [options]\n\nThe Entry broker: WebSocket exec into Docker containers.\nEvery option can also be set as ENTRY_<NAME> (e.g. ENTRY_JWT_PUBLIC_KEY) or in a JSON --config file.')
    .options(OPTIONS)
    .option('config', { type: 'string', describe: 'JSON config file (keys are the option names)' })
    .strict()
    // One line naming what is wrong, exit 2, as for any other bad setting; not the whole help.
    .fail((message: string | undefined, err: Error | undefined) => {
      throw flagError(message ?? err?.message ?? 'cannot be read', argv);
    })
    .help()
    .version(false)
    .parseSync() as Record<string, unknown>;
  // Words after `--` are not options either, and nothing would read them.
  const rest = (parsed['_'] as unknown[] | undefined) ?? [];
  if (rest.length > 0) throw flagError(`Unknown arguments: ${rest.join(', ')}`, argv);
  const configPath = (parsed['config'] as string | undefined) ?? env['ENTRY_CONFIG'];
  const file = configPath ? readConfigFile(configPath) : {};
  for (const key of Object.keys(file)) {
    if (!(key in OPTIONS)) throw new ConfigError(`${key} (in ${configPath})`, 'unknown setting');
  }
  refuseEmptyFlags(argv);
  const raw: RawSettings = {};
  const sources: Record<string, string> = {};
  const take = (key: string, value: unknown, source: string) => {
    raw[key] = value;
    sources[key] = source;
  };
  for (const key of Object.keys(OPTIONS)) {
    const envName = `ENTRY_${key.toUpperCase().replace(/-/g, '_')}`;
    // An empty variable is an unset one: a Compose file passes `${ENTRY_X:-}` on when X is unset.
    if (parsed[key] !== undefined) take(key, parsed[key], `--${key}`);
    else if (env[envName]) take(key, env[envName], envName);
    else if (file[key] !== undefined) take(key, file[key], `${key} (in ${configPath})`);
  }
  // ENTRY_DOCKER_HOSTS lists several, comma-separated, and is a variable over the file as the
  // others are; DOCKER_HOST is the usual single default, taken only when nothing else names one.
  const fromFile = raw['docker-host'] !== undefined && sources['docker-host'] !== '--docker-host' && !sources['docker-host']!.startsWith('ENTRY_');
  if (env['ENTRY_DOCKER_HOSTS'] && (raw['docker-host'] === undefined || fromFile)) take('docker-host', env['ENTRY_DOCKER_HOSTS'], 'ENTRY_DOCKER_HOSTS');
  else if (env['DOCKER_HOST'] && raw['docker-host'] === undefined) take('docker-host', env['DOCKER_HOST'], 'DOCKER_HOST');
  if (raw['docker-cert-path'] === undefined && env['DOCKER_CERT_PATH']) take('docker-cert-path', env['DOCKER_CERT_PATH'], 'DOCKER_CERT_PATH');
  settingSources.set(raw, sources);
  return raw;
}

const settingSources = new WeakMap<RawSettings, Record<string, string>>();

/**
 * Where a setting of `raw` came from, as the operator wrote it (`--ping-interval`,
 * `ENTRY_PING_INTERVAL`, `ping-interval (in /etc/entry.json)`), for the message about a bad one.
 */
export function settingSource(raw: RawSettings, key: string): string | undefined {
  return settingSources.get(raw)?.[key];
}

/**
 * An option given without its value (`--tls-client-ca=`, `--listen ""`) is an error: taken as
 * unset, it would quietly mean the default (mutual TLS off, another address, the local engine).
 */
function refuseEmptyFlags(argv: readonly string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z][a-z0-9-]*)(=?)(.*)$/.exec(argv[i]!);
    if (!m || !(m[1]! in OPTIONS) || (OPTIONS[m[1]!] as { type?: string }).type === 'boolean') continue;
    const value = m[2] ? m[3] : argv[i + 1];
    if (value === '') throw new ConfigError(`--${m[1]}`, 'needs a value (leave the option out for its default)');
  }
}

/** yargs' complaint about the command line as a ConfigError: unknown options and stray words are named as given. */
function flagError(message: string, argv: readonly string[]): ConfigError {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (!unknown) return new ConfigError('on the command line', `${message} (entry-broker --help lists the options)`);
  // yargs names each unknown option twice, as given and camel-cased: only what was typed counts.
  const names = unknown[1]!.split(', ');
  // A group of short flags (`-xyz`) is named as typed.
  const typedAs = (n: string) => argv.find((a) => a === n || a.replace(/^-+/, '').split('=')[0] === n || (/^-[^-]/.test(a) && a.slice(1).includes(n)));
  const typed = names.map(typedAs).filter((a): a is string => a !== undefined);
  const given = typed.length > 0 ? [...new Set(typed)] : [`--${names[0]}`];
  const stray = given.filter((g) => !g.startsWith('-'));
  const options = given.filter((g) => g.startsWith('-')).map((g) => g.split('=')[0]!);
  const problems = [
    ...(options.length > 0 ? [`no such option ${options.join(', ')}`] : []),
    ...(stray.length > 0 ? [`unexpected ${stray.map((g) => JSON.stringify(g)).join(', ')}: the broker takes options only`] : []),
  ];
  if (stray.length === 0) return new ConfigError(options.join(', '), 'no such option (entry-broker --help lists them)');
  return new ConfigError('on the command line', `${problems.join('; ')} (entry-broker --help lists them)`);
}

function readConfigFile(path: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${path}: ${(err as Error).message}`);
  }
}
