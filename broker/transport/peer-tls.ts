import { createPrivateKey, X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ConfigError } from '../config/config-error.js';
import type { PeerTls } from '../config/fleet-settings.js';
import type { Logger } from '../log.js';
import { isBrokerCertificate } from './broker-certificate.js';
import { parsed, readSetting } from './tls.js';

/** id-kp-clientAuth (RFC 5280): the extended key usage a certificate presented as a client's needs. */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * The TLS context this broker uses towards the other brokers (a resume handed on): the CA it
 * trusts them by and the certificate it presents. The files are looked at with each use and
 * read again when one changed (a renewal, a Secret volume's new `..data`): hand-offs are rare,
 * a stat is cheap, and no reload can be missed. A new set that cannot be used keeps the one in
 * use, and says so once.
 */
export class PeerCredentials {
  private context: SecureContext | undefined;
  private stamp = '';
  /** The certificate in use lists extended key usages, clientAuth not among them: peers under mTLS refuse it. */
  lacksClientAuth = false;
  /** The other brokers are taken to ask for a client certificate: this one asks its clients for one, or --peer-cert was given. */
  mtls = false;
  /** --peer-name is given and the certificate in use does not hold it: peers under mTLS take it for a person's (broker-certificate.ts). */
  lacksPeerName = false;

  constructor(
    readonly settings: PeerTls,
    private readonly log: Logger,
  ) {}

  /**
   * At start: reads and checks the files (a ConfigError names the setting), and warns of a
   * certificate the other brokers will refuse as a client's. `mtls`: this broker asks for client
   * certificates, so its peers (configured alike) will too.
   */
  check(mtls: boolean): void {
    this.context = this.build();
    this.stamp = this.filesStamp();
    const id = this.settings.identity;
    this.mtls = Boolean(id && (mtls || id.setting === '--peer-cert'));
    if (id && this.mtls && this.lacksClientAuth) {
      this.log.warn(`${id.setting} ${id.cert} lacks the clientAuth extended key usage: a broker under mTLS will refuse it when a resume is handed to it; give --peer-cert/--peer-key a certificate that has it`);
    }
    if (id && this.mtls && this.lacksPeerName) {
      this.log.warn(
        `${id.setting} ${id.cert} does not hold --peer-name ${this.settings.name}: a broker under mTLS takes it for a person's when a resume is handed to it, and believes neither the client certificate nor the broker it names; give it a certificate that holds that name`,
      );
    }
  }

  /** The context for a connection made now. */
  current(): SecureContext {
    const stamp = this.filesStamp();
    if (stamp !== this.stamp || !this.context) {
      this.stamp = stamp;
      try {
        this.context = this.build();
        this.log.info('peer tls files reloaded', this.named());
      } catch (err) {
        this.log.warn('peer tls files not reloaded; keeping those in use', { ...this.named(), error: err as Error });
      }
    }
    // Built at start (check), so there is always one.
    return this.context!;
  }

  private named(): Record<string, string> {
    const { ca, identity } = this.settings;
    return { ...(ca ? { ca: ca.file } : {}), ...(identity ? { cert: identity.cert } : {}) };
  }

  private files(): string[] {
    const { ca, identity } = this.settings;
    return [...(ca ? [ca.file] : []), ...(identity ? [identity.cert, identity.key] : [])];
  }

  /** What the files are now: a renewal changes the inode (a rename, a new `..data`) or the size and time. */
  private filesStamp(): string {
    return this.files()
      .map((f) => {
        try {
          const s = statSync(f);
          return `${s.ino}:${s.size}:${s.mtimeMs}`;
        } catch {
          return 'missing';
        }
      })
      .join('|');
  }

  private build(): SecureContext {
    const { ca, identity } = this.settings;
    const caPem = ca ? readSetting(ca.setting, ca.file) : undefined;
    if (ca && caPem) parsed(ca.setting, ca.file, () => new X509Certificate(caPem), 'PEM CA certificates');
    let pair: { cert: Buffer; key: Buffer } | undefined;
    if (identity) {
      const keySetting = identity.setting === '--peer-cert' ? '--peer-key' : '--tls-key';
      const cert = readSetting(identity.setting, identity.cert);
      const key = readSetting(keySetting, identity.key);
      const x509 = parsed(identity.setting, identity.cert, () => new X509Certificate(cert), 'a PEM certificate');
      const privateKey = parsed(keySetting, identity.key, () => createPrivateKey(key), 'a PEM private key');
      if (!x509.checkPrivateKey(privateKey)) throw new ConfigError(keySetting, `${identity.key} does not match the certificate in ${identity.cert}`);
      pair = { cert, key };
      // No extended key usage at all allows every use.
      this.lacksClientAuth = Boolean(x509.keyUsage && !x509.keyUsage.includes(CLIENT_AUTH));
      // Checked as the peers check it (isBrokerCertificate).
      this.lacksPeerName = this.settings.name !== undefined && !isBrokerCertificate(x509.toLegacyObject(), '', this.settings.name);
    }
    // A CA given replaces the system's: a peer is trusted by the fleet's CA alone.
    return createSecureContext({ ...(caPem ? { ca: caPem } : {}), ...(pair ?? {}) });
  }
}
