import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';

const BROKER = fileURLToPath(new URL('../../dist/broker/main.js', import.meta.url));

export interface BrokerProcess {
  child: ChildProcess;
  /** The broker's id in the shared registry. */
  id: string;
  url: string;
  wsUrl: string;
  /** Log lines so far (JSON). */
  logs: string[];
  mint(claims?: Record<string, unknown>, user?: string): Promise<string>;
  /** Resident set size of the broker process in bytes (from /proc). */
  rss(): number;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** The built broker as a separate process (for memory figures, signals, crashes). */
/** A signing key several broker processes can share. */
export function makeSigningKey(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

export async function startBrokerProcess(flags: string[] = [], env: Record<string, string> = {}, key = makeSigningKey()): Promise<BrokerProcess> {
  const { publicKey, privateKey } = key;
  const dir = mkdtempSync(join(tmpdir(), 'entry-broker-'));
  const keyFile = join(dir, 'jwt.pub.pem');
  writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const child = spawn(process.execPath, [BROKER, '--listen', '127.0.0.1:0', '--jwt-public-key', keyFile, '--log-level', 'info', '--recordings-dir', join(dir, 'recordings'), ...flags], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: string[] = [];
  let brokerId = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string; broker?: string };
          if (rec.msg === 'listening' && rec.url) {
            brokerId = rec.broker ?? '';
            resolve(rec.url);
          }
        } catch {
          // Not JSON (a start-up failure line): kept in logs.
        }
      }
    });
    void exited.then((code) => reject(new Error(`broker exited with ${code}: ${logs.join('\n')}`)));
  });
  return {
    child,
    id: brokerId,
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/enter`,
    logs,
    mint: (claims = { apps: ['*'] }, user = 'alice') => mintWith(privateKey, claims, user),
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

function mintWith(key: KeyObject, claims: Record<string, unknown>, user: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA' }).setSubject(user).setIssuedAt().setExpirationTime('1h').sign(key);
}
