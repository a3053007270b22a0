import { createHash } from 'node:crypto';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { makePrivateDir } from '../config/private-dir.js';
import type { BrokerRef } from '../config/store.js';
import { type ContainerEntry, listContainers } from './broker-api.js';

/** How long completion trusts the last listing. */
export const TARGET_CACHE_SEC = 30;

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['ENTRY_CACHE_DIR']) return env['ENTRY_CACHE_DIR'];
  if (env['ENTRY_CONFIG_DIR']) return join(env['ENTRY_CONFIG_DIR'], 'cache');
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'entry');
}

function cacheFile(ref: BrokerRef, env: NodeJS.ProcessEnv): string {
  // One file per broker and token: another user's listing is never shown.
  const key = createHash('sha256').update(`${ref.url}\n${env['ENTRY_TOKEN'] ?? ''}\n${ref.profile ?? ''}`).digest('hex').slice(0, 16);
  return join(cacheDir(env), `targets-${key}.json`);
}

/** Saves a listing for completion (0600: it says which apps you can enter). */
export function cacheTargets(ref: BrokerRef, containers: ContainerEntry[], env: NodeJS.ProcessEnv = process.env): void {
  // A cache in the config directory waits for that directory: only saving config (login,
  // broker add) makes it. A listing made a missing ENTRY_CONFIG_DIR, as whoever ran enter.
  if (!env['ENTRY_CACHE_DIR'] && env['ENTRY_CONFIG_DIR'] && !isDirectory(env['ENTRY_CONFIG_DIR'])) return;
  try {
    makePrivateDir(cacheDir(env), 'the cache directory');
    const file = cacheFile(ref, env);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ at: Date.now(), containers }), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // A cache that cannot be written only makes completion slower.
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The listing from the cache when fresh, else from the broker (and cached). */
export async function cachedTargets(ref: BrokerRef, token: () => Promise<string>, env: NodeJS.ProcessEnv = process.env, now = Date.now()): Promise<ContainerEntry[]> {
  const ttl = Number(env['ENTRY_COMPLETION_CACHE_SEC'] ?? TARGET_CACHE_SEC) * 1000;
  try {
    const cached = JSON.parse(readFileSync(cacheFile(ref, env), 'utf8')) as { at: number; containers: ContainerEntry[] };
    if (now - cached.at < ttl && now >= cached.at) return cached.containers;
  } catch {
    // No cache yet.
  }
  // Completion must not hang the shell: a broker that is slow to answer offers nothing.
  const containers = await listContainers(ref, await token(), 3_000);
  cacheTargets(ref, containers, env);
  return containers;
}
