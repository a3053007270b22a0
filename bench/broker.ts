import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { cpuSeconds, rssBytes } from './proc-stats.js';

/** The built broker, beside this file once compiled (dist/bench → dist/broker). */
export const BROKER_MAIN = fileURLToPath(new URL('../broker/main.js', import.meta.url));

/** BENCH_BROKER_NODE_ARGS: node options for every broker of the run, to compare tunings (e.g. --max-semi-space-size=2). */
/** The broker runs as deployed (Dockerfile, systemd unit): a 1 MiB young generation. */
const EXTRA_NODE_ARGS = (process.env['BENCH_BROKER_NODE_ARGS'] ?? '--max-semi-space-size=4').split(/\s+/).filter(Boolean);

/**
 * Session recordings are on by default in the broker, so they are on here too, written to the
 * broker's own temporary directory (same disk as /var/lib/entry) and deleted when it stops.
 * `--no-recording` turns them off for a comparison.
 */
let recording = true;
export function setRecording(on: boolean): void {
  recording = on;
}

export interface BrokerOptions {
  /** Extra broker flags. */
  flags?: string[];
  /** Extra node options placed before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

/** The built broker as a child process with a fresh Ed25519 key, as in production. */
export class BrokerChild {
  readonly wsUrl: string;
  /** The last log lines, for failure reports. */
  readonly logTail: string[] = [];
  private readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    private readonly key: KeyObject,
    private readonly dir: string,
    exited: Promise<number | null>,
    logTail: string[],
  ) {
    this.wsUrl = `${url.replace(/^http/, 'ws')}/enter`;
    this.exited = exited;
    this.logTail = logTail;
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: BrokerOptions = {}): Promise<BrokerChild> {
    if (!existsSync(BROKER_MAIN)) throw new Error(`${BROKER_MAIN} is missing: build the broker first (npx tsc -p tsconfig.json)`);
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const dir = mkdtempSync(join(tmpdir(), 'entry-bench-'));
    const keyFile = join(dir, 'jwt.pub.pem');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const recordings = recording ? join(dir, 'recordings') : 'none';
    const child = spawn(
      process.execPath,
      [
        ...EXTRA_NODE_ARGS,
        ...(options.nodeArgs ?? []),
        BROKER_MAIN,
        ...['--listen', '127.0.0.1:0', '--jwt-public-key', keyFile, '--log-level', 'info', '--recordings-dir', recordings],
        ...(options.flags ?? []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const logTail: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      // Always drained: a full stderr pipe would block the broker mid-benchmark.
      child.stderr!.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          logTail.push(line);
          if (logTail.length > 200) logTail.shift();
          if (line.includes('"listening"')) {
            try {
              const rec = JSON.parse(line) as { url?: string };
              if (rec.url) resolve(rec.url);
            } catch {
              // Not JSON: kept in the tail.
            }
          }
        }
      });
      void exited.then((code) => reject(new Error(`broker exited with ${code}: ${logTail.join('\n')}`)));
    }).catch((err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    return new BrokerChild(child, url, privateKey, dir, exited, logTail);
  }

  /** A token for every app, valid for an hour. */
  mint(user = 'bench'): Promise<string> {
    return new SignJWT({ apps: ['*'] }).setProtectedHeader({ alg: 'EdDSA' }).setSubject(user).setIssuedAt().setExpirationTime('1h').sign(this.key);
  }

  rss(): number {
    return rssBytes(this.pid);
  }

  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  /** SIGTERM (the broker drains and exits, writing profiles if asked), SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Polls the broker's /healthz every `intervalMs`: the answer time is (almost all) the broker's
 * event-loop delay, i.e. how long anything else, a keystroke included, would wait.
 */
export class LoopProbe {
  readonly samples: number[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(url: string, intervalMs = 100) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = () =>
      new Promise<void>((resolve) => {
        const t0 = process.hrtime.bigint();
        const req = get(`${url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            this.samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
            resolve();
          });
        });
        req.on('error', () => resolve());
      });
    this.done = (async () => {
      while (!this.stopped) {
        await once();
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      agent.destroy();
    })();
  }

  async stop(): Promise<number[]> {
    this.stopped = true;
    await this.done;
    return this.samples;
  }
}
