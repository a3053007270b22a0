import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type SecureContext } from 'node:tls';

/** How this broker reaches another over TLS (a resume handed on, a holder asked whether it runs). */
export interface PeerTarget {
  /** The CA it trusts the other by and the certificate it shows (see PeerCredentials); the system's CAs and none without it. */
  secureContext?: SecureContext | undefined;
  /** The name the other's certificate must hold, when not the host of its URL (--peer-name). */
  peerName?: string | undefined;
}

/**
 * TLS options for a connection to the broker at `host` (an address or a name, without
 * brackets): SNI for a name, never an address (RFC 6066), the peer context, and the certificate
 * checked against --peer-name when one is given.
 */
export function peerConnectOptions(host: string, peer: PeerTarget): { servername?: string; secureContext?: SecureContext; checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined } {
  const name = peer.peerName ?? host;
  return {
    ...(isIP(name) ? {} : { servername: name }),
    ...(peer.secureContext ? { secureContext: peer.secureContext } : {}),
    ...(peer.peerName ? { checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert) } : {}),
  };
}
