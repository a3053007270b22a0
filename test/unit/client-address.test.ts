import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { normalizeAddress, TrustedProxies } from '../../broker/transport/client-address.js';

const request = (peer: string, forwardedFor: string) => ({ socket: { remoteAddress: peer }, headers: { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

describe('normalizeAddress', () => {
  it('writes an IPv4 address seen through IPv6 as IPv4, in every spelling', () => {
    for (const a of ['::ffff:192.0.2.9', '::ffff:c000:209', '0:0:0:0:0:ffff:192.0.2.9', '::FFFF:C000:0209']) {
      expect(normalizeAddress(a), a).toBe('192.0.2.9');
    }
  });

  it('leaves IPv6 addresses, translated ones among them, and anything else as they are', () => {
    for (const a of ['2001:db8::1', '::1', '64:ff9b::c000:209', '::ffff:0:c000:209', '192.0.2.9', 'unknown', '']) {
      expect(normalizeAddress(a), a).toBe(a);
    }
  });
});

describe('TrustedProxies', () => {
  it('recognises a trusted proxy in X-Forwarded-For however its mapped address is spelled', () => {
    const proxies = new TrustedProxies(['10.0.0.0/8']);
    expect(proxies.originOf(request('::ffff:10.0.0.2', '203.0.113.5, ::ffff:a00:3')).address).toBe('203.0.113.5');
    expect(proxies.originOf(request('10.0.0.2', '203.0.113.5, 0:0:0:0:0:ffff:10.0.0.3')).address).toBe('203.0.113.5');
  });

  it('takes the rightmost address that is not a trusted proxy as the client, in one spelling', () => {
    const proxies = new TrustedProxies(['10.0.0.0/8']);
    expect(proxies.originOf(request('10.0.0.2', '198.51.100.1, ::ffff:cb00:7105')).address).toBe('203.0.113.5');
  });
});
