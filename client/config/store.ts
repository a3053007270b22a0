import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The CLI's saved state: the default broker and a token per broker, in
 * `$ENTRY_CONFIG_DIR` or `$XDG_CONFIG_HOME/entry` or `~/.config/entry`, file mode 0600.
 */
export interface SavedConfig {
  current?: string;
  brokers: Record<string, { token?: string }>;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['ENTRY_CONFIG_DIR']) return env['ENTRY_CONFIG_DIR'];
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'entry');
}

function configFile(env?: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'config.json');
}

export function loadSavedConfig(env?: NodeJS.ProcessEnv): SavedConfig {
  try {
    const parsed = JSON.parse(readFileSync(configFile(env), 'utf8')) as Partial<SavedConfig>;
    return { ...(parsed.current ? { current: parsed.current } : {}), brokers: parsed.brokers ?? {} };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { brokers: {} };
    throw new Error(`cannot read ${configFile(env)}: ${(err as Error).message}`);
  }
}

export function saveConfig(config: SavedConfig, env?: NodeJS.ProcessEnv): void {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = configFile(env);
  const tmp = `${file}.${process.pid}.tmp`;
  // Written with 0600 from the first byte, then renamed: the token is never world-readable.
  writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Normalises a broker address: `host:port` → `http://host:port`, no trailing slash. */
export function normaliseBrokerUrl(url: string): string {
  let u = url.trim();
  if (!/^[a-z]+:\/\//i.test(u)) u = `http://${u}`;
  const parsed = new URL(u);
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol)) {
    throw new Error(`broker URL must be http(s):// or ws(s)://, got ${url}`);
  }
  return parsed.toString().replace(/\/$/, '');
}

export function saveToken(brokerUrl: string, token: string, options: { makeCurrent?: boolean; env?: NodeJS.ProcessEnv } = {}): void {
  const url = normaliseBrokerUrl(brokerUrl);
  const config = loadSavedConfig(options.env);
  config.brokers[url] = { ...config.brokers[url], token };
  if (options.makeCurrent || !config.current) config.current = url;
  saveConfig(config, options.env);
}
