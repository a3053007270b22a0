import { createPrivateKey, X509Certificate } from 'node:crypto';
import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Server as HttpsServer, ServerOptions } from 'node:https';
import { dirname } from 'node:path';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { ConfigError } from '../config/config-error.js';
import type { ListenerTls } from '../config/fleet-settings.js';
import type { Logger } from '../log.js';
import { ignoreError } from '../errors.js';

/** Debounce for file changes: a swap is often several writes and renames in a row. */
const RELOAD_DEBOUNCE_MS = 150;

/**
 * The broker's certificate, key and client CA, read from files and reloaded without a restart:
 * on `reload()` (SIGHUP) and when anything in a file's directory changes (so a swap by rename,
 * or a Secret volume's new `..data`, is seen too). A reload that fails (a half-written file, a key that does not match)
 * keeps the certificate in use and logs why.
 */
export class ListenerCertificates {
  private server: HttpsServer | undefined;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Serial number of the certificate in use. */
  serial = '';

  constructor(
    private readonly files: ListenerTls,
    private readonly log: Logger,
  ) {}

  /** Options for https.createServer; throws when the files cannot be read (at start: fatal). */
  serverOptions(): ServerOptions {
    const files = this.read();
    // As for the JWT secret: a key every local user can read is a key anyone there can serve with.
    if (statSync(this.files.key).mode & 0o004) this.log.warn(`--tls-key ${this.files.key} can be read by every user on this machine: chmod o-r it`);
    return { ...files, ...(this.files.clientCa ? { requestCert: true, rejectUnauthorized: true } : {}) };
  }

  attach(server: HttpsServer): void {
    this.server = server;
    const dirs = new Set<string>();
    for (const f of [this.files.cert, this.files.key, this.files.clientCa]) if (f) dirs.add(dirname(f));
    for (const dir of dirs) {
      try {
        // Any change in the directory, not only to the files' own names: a Kubernetes Secret
        // volume renews them by pointing its `..data` link elsewhere, and the names the broker
        // was given (links through `..data`) never change. A reload that finds the same
        // certificate says nothing.
        const w = watch(dir, { persistent: false }, () => this.scheduleReload('file change'));
        w.on('error', ignoreError);
        this.watchers.push(w);
      } catch (err) {
        this.log.warn('tls: cannot watch certificate files; reload with SIGHUP', { dir, error: err as Error });
      }
    }
  }

  /** Reads the files again and uses them for new connections. Returns whether it worked. */
  reload(why = 'SIGHUP'): boolean {
    if (!this.server) return false;
    try {
      const previous = this.serial;
      this.server.setSecureContext(this.read());
      if (this.serial !== previous) this.log.info('tls certificate reloaded', { why, serial: this.serial });
      // An operator's SIGHUP is answered even when the files had not changed.
      else if (why === 'SIGHUP') this.log.info('tls certificate unchanged', { why, serial: this.serial });
      return true;
    } catch (err) {
      this.log.warn('tls reload failed; keeping the certificate in use', { why, error: err as Error });
      return false;
    }
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }

  private scheduleReload(why: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(why), RELOAD_DEBOUNCE_MS);
    this.timer.unref();
  }

  /** The files, checked; each failure names its setting (at start: one line, exit 2). */
  private read(): { cert: Buffer; key: Buffer; ca?: Buffer } {
    const cert = readSetting('--tls-cert', this.files.cert);
    const key = readSetting('--tls-key', this.files.key);
    const x509 = parsed('--tls-cert', this.files.cert, () => new X509Certificate(cert), 'a PEM certificate');
    const privateKey = parsed('--tls-key', this.files.key, () => createPrivateKey(key), 'a PEM private key');
    if (!x509.checkPrivateKey(privateKey)) throw new ConfigError('--tls-key', `${this.files.key} does not match the certificate in ${this.files.cert}`);
    const ca = this.files.clientCa ? readSetting('--tls-client-ca', this.files.clientCa) : undefined;
    if (ca) parsed('--tls-client-ca', this.files.clientCa!, () => new X509Certificate(ca), 'PEM CA certificates');
    this.serial = x509.serialNumber;
    return { cert, key, ...(ca ? { ca } : {}) };
  }
}

/** A file a setting names; a failure is a ConfigError naming that setting. */
export function readSetting(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(setting, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** `parse()` of a file a setting names; a failure says what the file should have been. */
export function parsed<T>(setting: string, file: string, parse: () => T, what: string): T {
  try {
    return parse();
  } catch (err) {
    throw new ConfigError(setting, `${file} is not ${what} (${(err as Error).message})`);
  }
}

/** The verified client certificate's subject (`CN=alice, O=ops`), when the client sent one. */
export function clientCertificateSubject(req: IncomingMessage): string | undefined {
  const cert = verifiedPeerCertificate(req);
  if (!cert) return undefined;
  return Object.entries(cert.subject)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ');
}

/** The verified certificate the peer of `req` showed (mTLS); undefined when it showed none. */
export function verifiedPeerCertificate(req: IncomingMessage): PeerCertificate | undefined {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  return cert && cert.subject ? cert : undefined;
}
