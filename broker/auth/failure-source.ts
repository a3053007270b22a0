import { isIPv6 } from 'node:net';

/**
 * The unit failed authentications are counted by: an IPv4 address, or an IPv6 address's /64.
 * A host on IPv6 is given a whole /64 (RFC 6177) and picks the lower 64 bits itself (SLAAC,
 * privacy addresses), so one client can send from any number of addresses in it; counted one by
 * one, it would get `--auth-failure-limit` tries per address instead of per host. An IPv4
 * client seen through IPv6 (mapped, `::ffff:a.b.c.d` in any spelling, or translated by NAT64,
 * `64:ff9b::a.b.c.d`) counts as its IPv4 address: its /64 is shared by every IPv4 client.
 */
export function failureSource(address: string): string {
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return address;
  const g = groups16(bare);
  if (carriesIPv4(g)) return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  return `${g
    .slice(0, 4)
    .map((n) => n.toString(16))
    .join(':')}::/64`;
}

/** `::ffff:0:0/96` (mapped), `::ffff:0:0:0/96` (translated, RFC 2765) and `64:ff9b::/96` (NAT64, RFC 6052). */
function carriesIPv4(g: number[]): boolean {
  const zeros = (from: number, to: number) => g.slice(from, to).every((n) => n === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return true;
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return true;
  return g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6);
}

/** The eight 16-bit groups of a valid IPv6 address. */
function groups16(address: string): number[] {
  const [head = '', tail] = address.split('::');
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  return tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** A dotted IPv4 tail stands for the last two groups. */
function parts(part: string): number[] {
  if (part === '') return [];
  return part.split(':').flatMap((p) => {
    if (!p.includes('.')) return [Number.parseInt(p, 16)];
    const [a = 0, b = 0, c = 0, d = 0] = p.split('.').map(Number);
    return [(a << 8) | b, (c << 8) | d];
  });
}
