import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { issue, makeCa, type CertFiles, type TestCa } from '../helpers/certs.js';
import { runCli } from '../helpers/cli.js';

/**
 * `enter watch` over wss:// to a broker with a private CA that wants a client certificate:
 * --ca-file, --cert and --key (and ENTRY_*_FILE) apply to it as to a session. An unknown session
 * id is enough: the broker's "no such session" proves the TLS connection and the upgrade went through.
 */
describe('enter watch over TLS', () => {
  let ca: TestCa;
  let clients: TestCa;
  let alice: CertFiles;
  let broker: BrokerProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    ca = makeCa('Entry Watch CA');
    clients = makeCa('Entry Watch Clients');
    const server = issue(ca, 'localhost', { sans: ['localhost', '127.0.0.1'], name: 'broker' });
    alice = issue(clients, 'alice-laptop', { client: true });
    broker = await startBrokerProcess(['--tls-cert', server.cert, '--tls-key', server.key, '--tls-client-ca', clients.cert]);
    env = { ENTRY_BROKER: broker.url, ENTRY_TOKEN: await broker.mint({ roles: ['entry-admin'] }), ENTRY_CONFIG_DIR: '/nonexistent' };
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('uses --ca-file, --cert and --key', async () => {
    const r = await runCli(['--ca-file', ca.cert, '--cert', alice.cert, '--key', alice.key, 'watch', 'no-such-id'], env);
    expect(r.stderr.toString().split('\n')[0]).toBe('enter: no such session: no-such-id');
    expect(r.status).toBe(255);
  });

  it('uses ENTRY_CA_FILE, ENTRY_CERT_FILE and ENTRY_KEY_FILE', async () => {
    const r = await runCli(['watch', 'no-such-id'], { ...env, ENTRY_CA_FILE: ca.cert, ENTRY_CERT_FILE: alice.cert, ENTRY_KEY_FILE: alice.key });
    expect(r.stderr.toString().split('\n')[0]).toBe('enter: no such session: no-such-id');
    expect(r.status).toBe(255);
  });

  it('fails to connect without the CA, saying so', async () => {
    const r = await runCli(['watch', 'no-such-id'], env);
    expect(r.stderr.toString()).toMatch(/^enter: cannot reach broker .*(certificate|CERT|self.signed|UNABLE)/i);
    expect(r.status).toBe(255);
  });
});
