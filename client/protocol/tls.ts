import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { ClientError } from './client-error.js';

/**
 * How a client reaches a broker over https:// / wss:// with a private CA or a client
 * certificate (mTLS). PEM contents, not paths.
 */
export interface ClientTls {
  /** Extra CA certificate(s) to trust, on top of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and its key, for brokers that ask for one. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** Reads --ca-file / --cert / --key style paths (any may be absent). */
export function readClientTls(files: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined }): ClientTls | undefined {
  const read = (path: string | undefined, what: string) => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ClientError('ENTRY_BAD_REQUEST', `cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const ca = read(files.caFile, 'CA file');
  const cert = read(files.certFile, 'client certificate');
  const key = read(files.keyFile, 'client key');
  if (Boolean(cert) !== Boolean(key)) throw new ClientError('ENTRY_BAD_REQUEST', 'a client certificate needs its key, and a key its certificate (--cert and --key)');
  if (!ca && !cert) return undefined;
  return { ...(ca ? { ca } : {}), ...(cert ? { cert, key: key! } : {}) };
}

/** ENTRY_CA_FILE, ENTRY_CERT_FILE, ENTRY_KEY_FILE. */
export function clientTlsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientTls | undefined {
  return readClientTls({ caFile: env['ENTRY_CA_FILE'], certFile: env['ENTRY_CERT_FILE'], keyFile: env['ENTRY_KEY_FILE'] });
}

/**
 * TLS settings given in code, each falling back to its variable: `ca` alone still takes the
 * client certificate from ENTRY_CERT_FILE and ENTRY_KEY_FILE. A certificate without its key
 * (or the other way round) is an error, not a connection without either.
 */
export function clientTlsWith(given: ClientTls, env: NodeJS.ProcessEnv = process.env): ClientTls | undefined {
  if (Boolean(given.cert) !== Boolean(given.key)) throw new ClientError('ENTRY_BAD_REQUEST', 'a client certificate needs its key, and a key its certificate (cert and key)');
  const fromEnv = clientTlsFromEnv(env) ?? {};
  const ca = given.ca ?? fromEnv.ca;
  const cert = given.cert ?? fromEnv.cert;
  const key = given.cert ? given.key : fromEnv.key;
  if (!ca && !cert) return undefined;
  return { ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) };
}

/**
 * Options for tls.connect (ws, https, undici): a secure context with the system's roots plus
 * the extra CA, and the client certificate. Built once per set of PEMs and reused: parsing
 * the ~140 system roots for every connection would cost tens of milliseconds each time.
 */
export function tlsConnectOptions(tls: ClientTls | undefined): { secureContext?: SecureContext } {
  if (!tls) return {};
  const extra = tls.ca === undefined ? [] : Array.isArray(tls.ca) ? tls.ca : [tls.ca];
  const key = createHash('sha256');
  for (const part of [...extra, tls.cert ?? '', '\0', tls.key ?? '']) key.update(part).update('\0');
  const id = key.digest('hex');
  let context = contexts.get(id);
  if (!context) {
    context = createSecureContext({
      ...(extra.length ? { ca: [...rootCertificates, ...extra] } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key } : {}),
    });
    contexts.set(id, context);
  }
  return { secureContext: context };
}

const contexts = new Map<string, SecureContext>();

/** OpenSSL's words for a certificate chain it could not take to a trusted root. */
const UNTRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED']);

/**
 * Why a TLS connection to a broker failed, with what to do, for a code Node reports on one;
 * undefined for any other failure. The next step differs from an unreachable broker's: the
 * broker answered, and its certificate is what stands in the way.
 */
export function certificateFailure(code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  if (UNTRUSTED.has(code)) return `the broker's certificate is not signed by a CA this client trusts (${code}): give its CA with --ca-file or ENTRY_CA_FILE`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the broker's certificate is not issued for this host name (${code}): use the name it was issued for`;
  if (code === 'CERT_HAS_EXPIRED') return `the broker's certificate has expired (${code})`;
  if (code === 'CERT_NOT_YET_VALID') return `the broker's certificate is not valid yet (${code}): check this machine's clock`;
  return undefined;
}
