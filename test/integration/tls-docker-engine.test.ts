import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker } from '../helpers/broker.js';
import { uniqueApp } from '../helpers/containers.js';
import { openCommand } from '../helpers/sessions.js';
import { TlsTestEngine } from '../helpers/engine.js';

/** A Docker engine reached over tcp:// with TLS both ways (--tlsverify), as remote engines are. */
describe('a Docker engine over TCP with TLS', () => {
  const engine = new TlsTestEngine();
  const app = uniqueApp('te');
  let certDir = '';
  let containerId = '';

  beforeAll(async () => {
    await engine.start();
    engine.loadImage('entry-demo:latest');
    containerId = await engine.containers.entry(app, 'web', 1);
    // The docker CLI's layout: DOCKER_CERT_PATH/{ca,cert,key}.pem.
    certDir = mkdtempSync(join(tmpdir(), 'entry-docker-certs-'));
    copyFileSync(engine.ca.cert, join(certDir, 'ca.pem'));
    copyFileSync(engine.client.cert, join(certDir, 'cert.pem'));
    copyFileSync(engine.client.key, join(certDir, 'key.pem'));
  }, 120_000);
  afterAll(async () => {
    await engine.destroy();
    rmSync(certDir, { recursive: true, force: true });
  }, 60_000);

  it('answers over TLS only to a client with a certificate its CA signed', async () => {
    await expect(engine.tlsClient().ping()).resolves.toBeTruthy();
  });

  for (const how of ['flags', 'cert path'] as const) {
    it(`runs sessions through tcp://127.0.0.1:PORT with the TLS files given as ${how}`, async () => {
      const settings =
        how === 'flags'
          ? { 'docker-tls-ca': engine.ca.cert, 'docker-tls-cert': engine.client.cert, 'docker-tls-key': engine.client.key }
          : { 'docker-cert-path': certDir };
      const b = await startTestBroker({ 'docker-host': [`remote=${engine.tcpUrl}`], ...settings });
      try {
        const ready = (await (await fetch(`${b.url}/readyz`)).json()) as { hosts: Record<string, boolean> };
        expect(ready.hosts).toEqual({ remote: true });
        const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['sh', '-c', 'hostname; echo over-tls']);
        await s.closed;
        expect(s.stdoutText()).toBe(`${containerId.slice(0, 12)}\nover-tls\n`);
        expect(b.logs.some((l) => l.includes('"session start"') && l.includes('"host":"remote"'))).toBe(true);
      } finally {
        await b.stop();
      }
    });
  }

  it('reports the host unreachable when the broker has no client certificate', async () => {
    const b = await startTestBroker({ 'docker-host': [`remote=${engine.tcpUrl}`], 'docker-tls-ca': engine.ca.cert });
    try {
      const res = await fetch(`${b.url}/readyz`);
      expect(res.status).toBe(503);
      const s = await openCommand(b.wsUrl, await b.mint({ apps: [app] }), { app, proc: 'web', instance: 1 }, ['true']);
      await s.closed;
      expect(s.closeMessage()?.code).toBe('ENTRY_DOCKER_UNAVAILABLE');
      expect(new TextDecoder().decode(s.closeMessage()!.content)).toContain('docker host remote unreachable');
    } finally {
      await b.stop();
    }
  });
});
