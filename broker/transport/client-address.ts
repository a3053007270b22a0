import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { cidrBlock } from '../config/fleet-settings.js';
import { ipv4Of, ipv6Groups, isMappedIPv4 } from './ip-address.js';

/** Where a request really comes from, once trusted proxies are taken into account. */
export interface ClientOrigin {
  address: string;
}

const ORIGIN = Symbol('entry.clientOrigin');
type Stamped = IncomingMessage & { [ORIGIN]?: ClientOrigin };

/**
 * `::ffff:10.0.0.1` → `10.0.0.1`: one spelling per address, for limits, logs and audit. Node
 * writes a mapped address dotted; a proxy's X-Forwarded-For may not (`::ffff:a00:1`).
 */
export function normalizeAddress(address: string): string {
  const g = ipv6Groups(address);
  return g && isMappedIPv4(g) ? ipv4Of(g) : address;
}

/**
 * X-Forwarded-For is believed only when the peer is a trusted proxy.
 * The client is the rightmost address in X-Forwarded-For that is not itself a trusted proxy
 * (everything left of it could have been written by the client).
 */
export class TrustedProxies {
  private readonly list: BlockList | undefined;

  constructor(cidrs: readonly string[]) {
    if (cidrs.length === 0) return;
    const list = new BlockList();
    for (const c of cidrs) cidrBlock(c, list);
    this.list = list;
  }

  trusts(address: string): boolean {
    if (!this.list) return false;
    const a = normalizeAddress(address);
    const family = isIP(a);
    return family !== 0 && this.list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }

  originOf(req: IncomingMessage): ClientOrigin {
    const peer = normalizeAddress(req.socket.remoteAddress ?? '');
    const direct: ClientOrigin = { address: peer };
    if (!this.trusts(peer)) return direct;
    const forwarded = headerList(req.headers['x-forwarded-for']);
    let address = peer;
    for (let i = forwarded.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(forwarded[i]!.replace(/^\[|\]$/g, ''));
      if (!isIP(hop)) break;
      address = hop;
      if (!this.trusts(hop)) break;
    }
    return { address };
  }

  /** Works the origin out once per request and keeps it on the request. */
  stamp(req: IncomingMessage): ClientOrigin {
    const r = req as Stamped;
    return (r[ORIGIN] ??= this.originOf(req));
  }
}

/** The client's address as stamped by the broker (trusted proxies applied), else the peer's. */
export function clientAddress(req: IncomingMessage): string {
  return (req as Stamped)[ORIGIN]?.address ?? normalizeAddress(req.socket.remoteAddress ?? '');
}

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
