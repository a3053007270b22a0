import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { normalizeAddress } from './client-address.js';

/**
 * Whether a verified client certificate is a broker's, not a person's: only a broker's may name
 * another's certificate (entry-forwarded-client-cert) or the broker a resume came through.
 *
 * Under mTLS one CA signs both (a broker presents its --tls-cert to its peers, and trusts them by
 * its --tls-client-ca, unless told otherwise), and a TCP pass-through load balancer in
 * --trusted-proxy makes every client's hop come from a trusted address: neither the chain nor
 * the address tells the two apart. What a broker's certificate holds, and a person's does not, is
 * what its peers check it by when they connect to it: --peer-name when given (a certificate the
 * brokers share, naming their Service), else its own address, the host of its advertised URL
 * (each pod's in the Helm chart), which is also where it connects to its peers from. So the
 * certificate must hold `peerName`, else the address the hop comes from, checked as
 * checkServerIdentity checks a server's. A fleet whose brokers reach each other through NAT, or
 * under names only, gives --peer-name a name all their certificates hold.
 */
export function isBrokerCertificate(cert: PeerCertificate, hopAddress: string, peerName: string | undefined): boolean {
  // Names in the certificate's alternative names only: checkServerIdentity falls back to the
  // subject's CN for a name when there are none (never for an address), and a person's CN may
  // be what they asked for.
  if (peerName !== undefined && isIP(peerName) === 0 && !/(^|, )DNS:/.test(cert.subjectaltname ?? '')) return false;
  return checkServerIdentity(peerName ?? normalizeAddress(hopAddress), cert) === undefined;
}
