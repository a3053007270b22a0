import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { isBrokerCertificate } from '../../broker/transport/broker-certificate.js';
import { issue, makeCa } from '../helpers/certs.js';

const ca = makeCa('Entry Broker Certificate Unit CA');
afterAll(() => rmSync(ca.dir, { recursive: true, force: true }));
// As a TLS socket reports the certificate its peer showed.
const shown = (file: string) => new X509Certificate(readFileSync(file)).toLegacyObject();
const broker = shown(issue(ca, 'broker-a', { sans: ['10.0.0.7', 'broker-a.fleet.test'], both: true }).cert);
const byAddress = shown(issue(ca, 'broker-b', { sans: ['10.0.0.8'], both: true }).cert);
const shared = shown(issue(ca, 'entry.entry.svc', { sans: ['entry.entry.svc'], both: true }).cert);
const person = shown(issue(ca, 'alice-laptop', { client: true }).cert);
// A device's certificate that happens to hold an address: the load balancer's, say.
const device = shown(issue(ca, 'printer', { sans: ['10.0.0.9'], client: true }).cert);
// A person's certificate whose CN is the fleet's name, with no alternative names (a CA that signs the CN asked for).
const namedLikeTheFleet = shown(issue(ca, 'entry.entry.svc', { client: true }).cert);

describe("a broker's certificate, told from a person's", () => {
  it('holds the address the hop comes from, however the socket spells it, without --peer-name', () => {
    expect(isBrokerCertificate(broker, '10.0.0.7', undefined)).toBe(true);
    expect(isBrokerCertificate(broker, '::ffff:10.0.0.7', undefined)).toBe(true);
    expect(isBrokerCertificate(broker, '10.0.0.8', undefined)).toBe(false);
    expect(isBrokerCertificate(person, '10.0.0.7', undefined)).toBe(false);
    expect(isBrokerCertificate(shared, '10.0.0.7', undefined)).toBe(false);
  });

  it('holds --peer-name when given, from whatever address, and an address alone does not make one', () => {
    expect(isBrokerCertificate(shared, '10.0.0.7', 'entry.entry.svc')).toBe(true);
    expect(isBrokerCertificate(shared, '10.0.0.9', 'entry.entry.svc')).toBe(true);
    expect(isBrokerCertificate(broker, '10.0.0.7', 'entry.entry.svc')).toBe(false);
    expect(isBrokerCertificate(device, '10.0.0.9', 'entry.entry.svc')).toBe(false);
    expect(isBrokerCertificate(person, '10.0.0.9', 'entry.entry.svc')).toBe(false);
  });

  it('holds --peer-name among its alternative names: a CN of that name alone is not a broker\'s', () => {
    expect(isBrokerCertificate(namedLikeTheFleet, '10.0.0.9', 'entry.entry.svc')).toBe(false);
    expect(isBrokerCertificate(namedLikeTheFleet, '10.0.0.9', undefined)).toBe(false);
    // An address given as --peer-name is checked among the addresses, as always.
    expect(isBrokerCertificate(byAddress, '10.0.0.9', '10.0.0.8')).toBe(true);
  });
});
