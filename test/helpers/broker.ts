import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { EntryBroker } from '../../broker/broker.js';
import { parseConfig, type RawSettings } from '../../broker/config/config.js';
import type { ReapMode } from '../../broker/docker/process-reaper.js';
import { createLogger } from '../../broker/log.js';

export interface TestBroker {
  broker: EntryBroker;
  url: string;
  /** Where this broker writes its recordings. */
  recordingsDir: string;
  /** Its --state-dir (the session ledger is in sessions/ there). */
  stateDir: string;
  wsUrl: string;
  privateKey: KeyObject;
  /** Log lines the broker wrote. */
  logs: string[];
  /** A token for `user` with the given claims, valid for an hour unless `exp` is given. */
  mint(claims?: Record<string, unknown>, opts?: { user?: string; expiresIn?: string | number; noExp?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

/** An in-process broker on a free loopback port, trusting a fresh Ed25519 key. */
export async function startTestBroker(settings: RawSettings = {}, opts: { reapMode?: ReapMode } = {}): Promise<TestBroker> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const dir = mkdtempSync(join(tmpdir(), 'entry-test-'));
  const keyFile = join(dir, 'jwt.pub.pem');
  writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const logs: string[] = [];
  const config = parseConfig({ listen: '127.0.0.1:0', 'jwt-public-key': keyFile, 'log-level': 'debug', 'recordings-dir': join(dir, 'recordings'), 'state-dir': join(dir, 'state'), ...settings });
  const broker = new EntryBroker(config, { log: createLogger('debug', (l) => logs.push(l)), ...(opts.reapMode ? { reapMode: opts.reapMode } : {}) });
  await broker.start();
  const url = broker.url;
  return {
    broker,
    url,
    recordingsDir: config.audit.recordingsDir ?? '',
    stateDir: join(dir, 'state'),
    wsUrl: `${url.replace(/^http/, 'ws')}/enter`,
    privateKey,
    logs,
    async mint(claims = { apps: ['*'] }, o = {}) {
      let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA' }).setSubject(o.user ?? 'alice').setIssuedAt();
      if (!o.noExp) jwt = jwt.setExpirationTime(o.expiresIn ?? '1h');
      return jwt.sign(privateKey);
    },
    async stop() {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
