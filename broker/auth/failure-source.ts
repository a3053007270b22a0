import { ipv4Of, ipv6Groups, isMappedIPv4 } from '../transport/ip-address.js';

/**
 * The unit failed authentications are counted by: an IPv4 address, or an IPv6 address's /64.
 * A host on IPv6 is given a whole /64 (RFC 6177) and picks the lower 64 bits itself (SLAAC,
 * privacy addresses), so one client can send from any number of addresses in it; counted one by
 * one, it would get `--auth-failure-limit` tries per address instead of per host. An IPv4
 * client seen through IPv6 (mapped, `::ffff:a.b.c.d` in any spelling, or translated by NAT64,
 * `64:ff9b::a.b.c.d`) counts as its IPv4 address: its /64 is shared by every IPv4 client. So does
 * a 6to4 address (`2002:AABB:CCDD::/48`): the one IPv4 host behind it holds 65,536 /64s.
 */
export function failureSource(address: string): string {
  const g = ipv6Groups(address);
  if (!g) return address;
  if (carriesIPv4(g)) return ipv4Of(g);
  if (g[0] === 0x2002) return ipv4Of(g, 1);
  return `${g
    .slice(0, 4)
    .map((n) => n.toString(16))
    .join(':')}::/64`;
}

/** `::ffff:0:0/96` (mapped), `::ffff:0:0:0/96` (translated, RFC 2765) and `64:ff9b::/96` (NAT64, RFC 6052). */
function carriesIPv4(g: number[]): boolean {
  const zeros = (from: number, to: number) => g.slice(from, to).every((n) => n === 0);
  if (isMappedIPv4(g)) return true;
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return true;
  return g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6);
}
