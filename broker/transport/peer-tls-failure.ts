import type { PeerTls } from '../config/fleet-settings.js';
import { HUNG_UP_AFTER_HANDSHAKE } from './forward.js';

/** OpenSSL's verdicts on a certificate this broker was shown (Node puts them in `code`). */
const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'INVALID_PURPOSE',
]);
const UNACCEPTABLE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);

/** Alerts a TLS server sends about the certificate it was shown, or not shown. */
const CERTIFICATE_ALERTS = ['CERTIFICATE_REQUIRED', 'BAD_CERTIFICATE', 'UNSUPPORTED_CERTIFICATE', 'CERTIFICATE_EXPIRED', 'CERTIFICATE_REVOKED', 'CERTIFICATE_UNKNOWN', 'UNKNOWN_CA', 'ACCESS_DENIED'];

/**
 * Why a hand-off to another broker failed, in words an operator can act on, when the reason is
 * TLS (this broker refused the holder's certificate, or the holder refused this broker's);
 * undefined for any other failure (the holder gone, a refused connection, a timeout). `shown`:
 * whether the certificate presented lacks clientAuth, and whether the holder is taken to want
 * one (see PeerCredentials.mtls).
 */
export function peerTlsFailure(err: Error & { code?: string }, peer: PeerTls, shown: { lacksClientAuth: boolean; mtls: boolean }): string | undefined {
  const { lacksClientAuth } = shown;
  const code = err.code ?? '';
  const id = peer.identity;
  const which = id ? `${id.cert} (${id.setting})` : '';
  const noClientAuth = `${which} lacks the clientAuth extended key usage: give --peer-cert/--peer-key a certificate that has it`;
  if (code === HUNG_UP_AFTER_HANDSHAKE) {
    // Without a certificate shown, a holder that wants one says so with an alert; outside mTLS
    // (this broker asks no client for one, and no --peer-cert was given), it is a holder that went.
    if (!id || !shown.mtls) return undefined;
    return `the holder ended the connection after the TLS handshake without answering: it refused this broker's certificate, most likely: ${lacksClientAuth ? noClientAuth : `is ${which} signed by the holder's --tls-client-ca, and current?`}`;
  }
  const trusted = peer.ca ? `it trusts only the CA in ${peer.ca.file} (${peer.ca.setting})` : "it trusts only the system's CAs: give --peer-ca the CA that signs the brokers' certificates";
  if (UNTRUSTED.has(code)) return `this broker does not trust the holder's certificate (${err.message}): ${trusted}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `this broker refused the holder's certificate (${err.message}): ${peer.name ? `it must hold the name ${peer.name} (--peer-name)` : "it must hold the host of the holder's --advertise-url, or give --peer-name a name the brokers' certificates hold"}`;
  }
  if (UNACCEPTABLE.has(code)) return `this broker refused the holder's certificate (${err.message})`;
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code)?.[1];
  if (alert && CERTIFICATE_ALERTS.includes(alert)) {
    const name = alert.toLowerCase().replace(/_/g, ' ');
    if (!id) return `the holder refused this broker's certificate (${name}): this broker has none to present; give it --peer-cert and --peer-key`;
    if (alert === 'UNSUPPORTED_CERTIFICATE' || lacksClientAuth) return `the holder refused this broker's certificate (${name}): ${noClientAuth}`;
    if (alert === 'UNKNOWN_CA') return `the holder refused this broker's certificate (${name}): the holder's --tls-client-ca did not sign ${which}`;
    return `the holder refused this broker's certificate (${name}): ${which}`;
  }
  if (alert) return `the holder refused the TLS handshake (${alert.toLowerCase().replace(/_/g, ' ')})`;
  // Plain HTTP where TLS was expected, a protocol no side shares: TLS all the same.
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return `TLS with the holder failed (${err.message})`;
  return undefined;
}
