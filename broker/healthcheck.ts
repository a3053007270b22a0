#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { get as getTls } from 'node:https';
import { connect } from 'node:tls';
import { parseListen } from './config/config.js';
import { readSettings } from './config/flags.js';

/**
 * The image's HEALTHCHECK: `/healthz` on the broker's own listener, found as the broker found it:
 * its flags (read from the process, PID 1 in the image, or the PID given), its ENTRY_* variables
 * and its config file. With a client CA (mTLS) `/healthz` wants a certificate the check does not
 * have: it asks the metrics listener's `/healthz` when there is one, else a TLS handshake the
 * listener completes is taken for alive.
 */

/** How long the check waits for the answer (Docker's own timeout is 3 s). */
const ANSWER_MS = 2_500;

function brokerArguments(pid: string): string[] {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const main = argv.findIndex((a) => a.endsWith('/broker/main.js'));
    return main >= 0 ? argv.slice(main + 1) : [];
  } catch {
    return [];
  }
}

async function check(): Promise<boolean> {
  // A setting the broker could not use fails the check here too, without a stack trace.
  const raw = readSettings(brokerArguments(process.argv[2] ?? '1'), process.env);
  const mutualTls = Boolean(raw['tls-client-ca']);
  const metrics = typeof raw['metrics-listen'] === 'string' ? raw['metrics-listen'] : undefined;
  const plain = mutualTls && metrics !== undefined;
  const { host, port } = parseListen(plain ? metrics : typeof raw['listen'] === 'string' ? raw['listen'] : '0.0.0.0:8022');
  // A wildcard listener is reached on loopback; the certificate names the public host, not that.
  const address = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const timeout = ANSWER_MS;
  return new Promise((resolve) => {
    if (mutualTls && !plain) {
      const s = connect({ host: address, port, rejectUnauthorized: false, timeout }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
      s.on('timeout', () => s.destroy(new Error('timeout')));
      return;
    }
    const options = { host: address, port, path: '/healthz', timeout, rejectUnauthorized: false };
    const req = (raw['tls-cert'] && !plain ? getTls : get)(options, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

check().then(
  (ok) => process.exit(ok ? 0 : 1),
  () => process.exit(1),
);
