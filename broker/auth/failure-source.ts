import { isIPv6 } from 'node:net';

/**
 * The unit failed authentications are counted by: an IPv4 address, or an IPv6 address's /64.
 * A host on IPv6 is given a whole /64 (RFC 6177) and picks the lower 64 bits itself (SLAAC,
 * privacy addresses), so one client can send from any number of addresses in it; counted one by
 * one, it would get `--auth-failure-limit` tries per address instead of per host.
 */
export function failureSource(address: string): string {
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return address;
  return `${upperHalf(bare).join(':')}::/64`;
}

/** The first four groups of a valid IPv6 address, each without leading zeros. */
function upperHalf(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return full.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16));
}

/** A dotted IPv4 tail stands for two groups; only the lower 64 bits can hold one. */
function groups(part: string): string[] {
  return part === '' ? [] : part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
}
