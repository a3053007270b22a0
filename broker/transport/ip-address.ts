import { isIPv6 } from 'node:net';

/** The eight 16-bit groups of an IPv6 address (a zone id, `%eth0`, left off); undefined for anything else. */
export function ipv6Groups(address: string): number[] | undefined {
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return undefined;
  const [head = '', tail] = bare.split('::');
  const left = parts(head);
  const right = tail === undefined ? [] : parts(tail);
  return tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** `::ffff:0:0/96`: an IPv4 address as an IPv6 socket reports it, however it is spelled. */
export function isMappedIPv4(g: readonly number[]): boolean {
  return g.slice(0, 5).every((n) => n === 0) && g[5] === 0xffff;
}

/** The IPv4 address in two groups, from group `at` on: the last two unless told (6to4 has it in 1–2). */
export function ipv4Of(g: readonly number[], at = 6): string {
  const [hi = 0, lo = 0] = g.slice(at, at + 2);
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
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
