import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../broker/config/config-error.js';
import { createLogger } from '../../broker/log.js';
import { ListenerCertificates } from '../../broker/transport/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-tls-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '1'], { stdio: 'ignore' });
const otherKey = join(dir, 'other-key.pem');
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKey], { stdio: 'ignore' });

/** The setting named by what loading these files throws. */
function refusal(files: { cert: string; key: string; clientCa?: string }): { setting: string; message: string } {
  try {
    new ListenerCertificates(files as never, createLogger('silent')).serverOptions();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { setting: (err as ConfigError).setting, message: (err as Error).message };
  }
  throw new Error('accepted');
}

describe('the listener TLS files at start', () => {
  it('are taken when they are a certificate and its key', () => {
    expect(new ListenerCertificates({ cert, key } as never, createLogger('silent')).serverOptions().cert).toBeDefined();
  });

  it('name the setting of a file that cannot be read or is not what it should be', () => {
    expect(refusal({ cert: file('garbage.pem', 'not a certificate'), key }).setting).toBe('--tls-cert');
    expect(refusal({ cert: dir, key }).setting).toBe('--tls-cert');
    expect(refusal({ cert, key: file('garbage-key.pem', 'not a key') }).setting).toBe('--tls-key');
    expect(refusal({ cert, key: otherKey })).toMatchObject({ setting: '--tls-key', message: expect.stringMatching(/does not match/) });
    expect(refusal({ cert, key, clientCa: file('garbage-ca.pem', 'no CA here') }).setting).toBe('--tls-client-ca');
  });
});
