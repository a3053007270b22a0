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
export async function startBrokerProcess(flags: string[] = [], env: Record<string, string> = {}): Promise<BrokerProcess> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const dir = mkdtempSync(join(tmpdir(), 'entry-broker-'));
  const keyFile = join(dir, 'jwt.pub.pem');
  writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  const child = spawn(process.execPath, [BROKER, '--listen', '127.0.0.1:0', '--jwt-public-key', keyFile, '--log-level', 'info', ...flags], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const logs: string[] = [];
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
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === 'listening' && rec.url) resolve(rec.url);
        } catch {
          // Not JSON (a start-up failure line): kept in logs.
        }
      }
    });
    void exited.then((code) => reject(new Error(`broker exited with ${code}: ${logs.join('\n')}`)));
  });
  return {
    child,
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
