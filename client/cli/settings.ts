import { loadSavedConfig, normaliseBrokerUrl } from '../config/store.js';
import { ClientError } from '../protocol/client-error.js';

/** Where the CLI connects and with which token: flag, then ENTRY_* variable, then saved config. */
export function resolveBroker(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const raw = flag ?? env['ENTRY_BROKER'] ?? loadSavedConfig(env).current;
  if (!raw) {
    throw new ClientError('ENTRY_NO_BROKER', 'no broker: pass --broker URL, set ENTRY_BROKER, or run `enter login --broker URL`');
  }
  return normaliseBrokerUrl(raw);
}

export function resolveToken(broker: string, env: NodeJS.ProcessEnv = process.env): string {
  const token = env['ENTRY_TOKEN'] || loadSavedConfig(env).brokers[broker]?.token;
  if (!token) throw new ClientError('ENTRY_NO_TOKEN', `no token for ${broker}: set ENTRY_TOKEN or run \`enter login --broker ${broker}\``);
  return token;
}
