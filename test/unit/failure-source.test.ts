import { describe, expect, it } from 'vitest';
import { failureSource } from '../../broker/auth/failure-source.js';

describe('failureSource', () => {
  it('keeps an IPv4 address whole', () => {
    expect(failureSource('192.0.2.7')).toBe('192.0.2.7');
  });

  it('gives one name to every spelling of the same IPv6 /64', () => {
    const names = ['2001:db8:0:1::1', '2001:0db8:0000:0001:ffff:ffff:ffff:ffff', '2001:db8:0:1:1:2:3:4', '2001:db8:0:1::192.0.2.1', '2001:db8:0:1::9%eth0'].map(failureSource);
    expect(new Set(names)).toEqual(new Set(['2001:db8:0:1::/64']));
  });

  it('tells /64s apart, the compressed groups counted right', () => {
    expect(failureSource('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(failureSource('2001:db8:0:2::1')).toBe('2001:db8:0:2::/64');
    expect(failureSource('::1')).toBe('0:0:0:0::/64');
    expect(failureSource('1:2:3:4:5::')).toBe('1:2:3:4::/64');
    expect(failureSource('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('counts an IPv4 client seen through IPv6 as its IPv4 address, in every spelling', () => {
    for (const a of ['::ffff:192.0.2.9', '::ffff:c000:209', '0:0:0:0:0:ffff:192.0.2.9', '::FFFF:C000:0209', '::ffff:0:192.0.2.9', '64:ff9b::192.0.2.9', '64:ff9b::c000:209']) {
      expect(failureSource(a), a).toBe('192.0.2.9');
    }
    expect(failureSource('::ffff:c000:20a')).toBe('192.0.2.10');
    // Not IPv4 inside: the loopback and an ordinary address keep their /64.
    expect(failureSource('::1')).toBe('0:0:0:0::/64');
    expect(failureSource('64:ff9b:1::c000:209')).toBe('64:ff9b:1:0::/64');
  });

  it('counts every /64 of a 6to4 address as the one IPv4 host behind it', () => {
    for (const a of ['2002:c000:209::1', '2002:c000:209:1::1', '2002:c000:209:ffff:1:2:3:4']) expect(failureSource(a), a).toBe('192.0.2.9');
    expect(failureSource('2002:102:304:1::1')).toBe('1.2.3.4');
  });

  it('passes anything that is not an address through unchanged', () => {
    expect(failureSource('')).toBe('');
    expect(failureSource('not an address')).toBe('not an address');
  });
});
