import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestCa extends CertFiles {
  dir: string;
  /** PEM of the CA certificate. */
  pem(): Buffer;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

/** A throwaway certificate authority made with Debian's openssl CLI (EC P-256: fast). */
export function makeCa(name = 'Entry Test CA', dir = mkdtempSync(join(tmpdir(), 'entry-certs-'))): TestCa {
  const key = join(dir, `${slug(name)}-ca.key`);
  const cert = join(dir, `${slug(name)}-ca.pem`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], dir);
  openssl(['req', '-x509', '-new', '-key', key, '-sha256', '-days', '2', '-subj', `/CN=${name}`, '-out', cert], dir);
  return { dir, cert, key, pem: () => readFileSync(cert) };
}

let serial = Date.now();

/**
 * A certificate signed by `ca`: a server certificate for `sans` (DNS names and IPs), or a
 * client certificate (extendedKeyUsage clientAuth) when `client` is set, or both (`both`: a
 * broker's certificate that it also presents to its peers). Returns the files and the serial
 * number (hex, upper case, as Node's X509Certificate reports it).
 */
export function issue(ca: TestCa, cn: string, opts: { sans?: string[]; client?: boolean; both?: boolean; name?: string } = {}): CertFiles & { serial: string } {
  const base = join(ca.dir, opts.name ?? slug(cn));
  const key = `${base}.key`;
  const csr = `${base}.csr`;
  const cert = `${base}.pem`;
  const ext = `${base}.ext`;
  const sans = (opts.sans ?? []).map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`));
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      `extendedKeyUsage=${opts.both ? 'serverAuth,clientAuth' : opts.client ? 'clientAuth' : 'serverAuth'}`,
      'keyUsage=digitalSignature,keyEncipherment',
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
    ].join('\n'),
  );
  const hex = (++serial).toString(16).toUpperCase();
  const serialHex = hex.length % 2 ? `0${hex}` : hex;
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key], ca.dir);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr], ca.dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${serialHex}`, '-days', '2', '-sha256', '-extfile', ext, '-out', cert], ca.dir);
  return { cert, key, serial: serialHex };
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}
