import { execFileSync } from 'node:child_process';

/** What the suite must leave as it found it: the machine engine's default bridge and its networks. */
export interface HostNetworkState {
  /** The docker0 link (index, MAC, addresses), or null where the machine has none. */
  docker0: { ifindex: number; mac: string; addresses: string[] } | null;
  /** `id name driver` of every network of the machine's engine, sorted. */
  networks: string[];
}

export function hostNetworkState(): HostNetworkState {
  return { docker0: docker0(), networks: networks() };
}

function docker0(): HostNetworkState['docker0'] {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', 'addr', 'show', 'dev', 'docker0'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    // `ip` fails for a device that does not exist.
    return null;
  }
  const [link] = JSON.parse(out) as { ifindex: number; address: string; addr_info?: { local: string; prefixlen: number }[] }[];
  if (!link) return null;
  // Flags and carrier are left out: they change whenever a container joins or leaves the bridge.
  return { ifindex: link.ifindex, mac: link.address, addresses: (link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`).sort() };
}

function networks(): string[] {
  const out = execFileSync('docker', ['network', 'ls', '--no-trunc', '--format', '{{.ID}} {{.Name}} {{.Driver}}'], { encoding: 'utf8', timeout: 20_000 });
  return out.split('\n').filter(Boolean).sort();
}
