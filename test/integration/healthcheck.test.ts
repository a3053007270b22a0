import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { issue, makeCa } from '../helpers/certs.js';
import { stopChild } from '../helpers/child.js';
import { startDevBroker } from '../helpers/dev-broker.js';
import { freePort } from '../helpers/redis.js';

const HEALTHCHECK = fileURLToPath(new URL('../../dist/broker/healthcheck.js', import.meta.url));

/** The image's health check run against a broker, as Docker runs it: its exit status. */
function healthcheck(pid: number, env: NodeJS.ProcessEnv = {}): Promise<number> {
  return new Promise((resolve) => {
    execFile(process.execPath, [HEALTHCHECK, String(pid)], { env: { PATH: process.env['PATH'], ...env }, timeout: 10_000 }, (err) => resolve(err ? Number((err as { code?: number }).code ?? 1) : 0));
  });
}

/**
 * The health check finds the listener as the broker did, whatever says where it is: a flag, a
 * variable, with TLS or mTLS.
 */
describe('the image health check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'entry-healthcheck-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A dev broker with `flags`, listening on a port of its own; stopped when `use` is done. */
  async function withBroker(flags: string[], env: NodeJS.ProcessEnv, use: (pid: number) => Promise<void>): Promise<void> {
    const child = await startDevBroker(['--dev-token-file', join(dir, `token-${Math.random()}`), ...flags], env);
    try {
      await use(child.pid!);
    } finally {
      await stopChild(child);
    }
  }

  it('reaches a listener given as a flag, and one given as a variable', async () => {
    const port = await freePort();
    await withBroker(['--listen', `127.0.0.1:${port}`], {}, async (pid) => {
      expect(await healthcheck(pid)).toBe(0);
    });
    const other = await freePort();
    await withBroker([], { ENTRY_LISTEN: `127.0.0.1:${other}` }, async (pid) => {
      expect(await healthcheck(pid, { ENTRY_LISTEN: `127.0.0.1:${other}` })).toBe(0);
      // Told the wrong port, it fails: the check is of this listener.
      expect(await healthcheck(pid, { ENTRY_LISTEN: `127.0.0.1:${port}` })).toBe(1);
    });
  });

  it('speaks https to a TLS listener; under mTLS asks the metrics listener, or takes a handshake for alive without one', async () => {
    const ca = makeCa('Entry Broker CA', dir);
    const server = issue(ca, 'broker.example', { sans: ['broker.example'], name: 'hc' });
    const clients = makeCa('Entry Client CA', mkdtempSync(join(dir, 'clients-')));
    const tls = ['--tls-cert', server.cert, '--tls-key', server.key];
    await withBroker(['--listen', `127.0.0.1:${await freePort()}`, ...tls], {}, async (pid) => {
      expect(await healthcheck(pid)).toBe(0);
    });
    await withBroker(['--listen', `127.0.0.1:${await freePort()}`, ...tls, '--tls-client-ca', clients.cert], {}, async (pid) => {
      expect(await healthcheck(pid)).toBe(0);
      // Told of a metrics listener where none answers, it fails: it asks there, not the handshake.
      expect(await healthcheck(pid, { ENTRY_METRICS_LISTEN: `127.0.0.1:${await freePort()}` })).toBe(1);
    });
    const metrics = `127.0.0.1:${await freePort()}`;
    await withBroker(['--listen', `127.0.0.1:${await freePort()}`, ...tls, '--tls-client-ca', clients.cert, '--metrics-listen', metrics], {}, async (pid) => {
      expect(await healthcheck(pid)).toBe(0);
    });
  });
});
