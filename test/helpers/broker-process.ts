import { type ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ENGINE_SOCKET } from './containers.js';
import { cpuSeconds, rssBytes } from './proc.js';
import { BUILT_BROKER } from './repo.js';

export interface SigningKey {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** A signing key several broker processes can share. */
export function makeSigningKey(): SigningKey {
  return generateKeyPairSync('ed25519');
}

export interface BrokerProcessOptions {
  /** Extra broker flags. */
  flags?: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Node options placed before the script (e.g. --cpu-prof, --inspect=127.0.0.1:0). */
  nodeArgs?: string[];
  /** The key whose public half the broker trusts; a fresh one unless given. */
  key?: SigningKey;
  /** Session recordings in the broker's temporary directory (the broker's default), or none. */
  recordings?: boolean;
  /** Keep only the last this many log lines (a long benchmark); all unless given. */
  keepLogs?: number;
  /** Subject of the tokens `mint` makes unless told. */
  user?: string;
  /** --state-dir (the session ledger): one several brokers share, or the broker's temporary directory. */
  stateDir?: string;
  /** A command the broker runs under (e.g. `unshare --pid --fork --kill-child`): it gets node and its arguments. */
  launcher?: string[];
  /** --listen; 127.0.0.1 on a port of the system's choosing unless given. */
  listen?: string;
  /**
   * Runs the broker as nobody, in the engine socket's group, as the systemd unit runs it as a
   * user of its own: it sees the engine's processes in /proc but may neither read a root
   * process's environment nor signal it. It may read any file (CAP_DAC_READ_SEARCH, which gives
   * neither), so that the checkout may sit in a private home.
   */
  unprivileged?: boolean;
}


/**
 * The built broker as a child process, as deployed: for memory and CPU figures, signals,
 * crashes, and brokers sharing a store. Its temporary directory (key, recordings, ledger) goes when it
 * stops.
 */
export class BrokerProcess {
  readonly wsUrl: string;

  private constructor(
    readonly child: ChildProcess,
    /** The broker's id in the shared registry. */
    readonly id: string,
    readonly url: string,
    /** Log lines so far (JSON), or the last `keepLogs` of them. */
    readonly logs: string[],
    /** Resolves with the exit code when the process ends. */
    readonly exited: Promise<number | null>,
    private readonly key: KeyObject,
    private readonly dir: string,
    private readonly user: string,
  ) {
    this.wsUrl = `${url.replace(/^http/, 'ws')}/enter`;
  }

  static async start(options: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    if (!existsSync(BUILT_BROKER)) throw new Error(`${BUILT_BROKER} is missing: build the broker first (npm run build)`);
    const { publicKey, privateKey } = options.key ?? makeSigningKey();
    const dir = mkdtempSync(join(tmpdir(), 'entry-broker-'));
    const keyFile = join(dir, 'jwt.pub.pem');
    writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const recordings = options.recordings === false ? 'none' : join(dir, 'recordings');
    // Killed when the test worker that started it ends, however it ends: a test that failed
    // before its `stop` would leave it listening, its folder gone.
    const setpriv = ['setpriv', '--pdeathsig', 'KILL'];
    if (options.unprivileged) {
      setpriv.push('--reuid=65534', '--regid=65534', `--groups=${statSync(ENGINE_SOCKET).gid}`, '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search');
      // Its state and recordings are written here.
      chmodSync(dir, 0o777);
    }
    const [command, ...launcherArgs] = [...setpriv, '--', ...(options.launcher ?? []), process.execPath];
    const child = spawn(
      command!,
      [
        ...launcherArgs,
        ...(options.nodeArgs ?? []),
        BUILT_BROKER,
        ...['--listen', options.listen ?? '127.0.0.1:0', '--jwt-public-key', keyFile, '--log-level', 'info', '--recordings-dir', recordings, '--state-dir', options.stateDir ?? join(dir, 'state')],
        ...(options.flags ?? []),
      ],
      { env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const logs: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let id = '';
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      // Always drained: a full stderr pipe would block the broker.
      child.stderr!.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          logs.push(line);
          if (options.keepLogs !== undefined && logs.length > options.keepLogs) logs.shift();
          if (!line.includes('"listening"')) continue;
          try {
            const rec = JSON.parse(line) as { msg?: string; url?: string; broker?: string };
            if (rec.msg === 'listening' && rec.url) {
              id = rec.broker ?? '';
              resolve(rec.url);
            }
          } catch {
            // Not JSON (a start-up failure line): kept in the logs.
          }
        }
      });
      void exited.then((code) => reject(new Error(`broker exited with ${code}: ${logs.join('\n')}`)));
    }).catch((err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    return new BrokerProcess(child, id, url, logs, exited, privateKey, dir, options.user ?? 'alice');
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** A token with `claims` (every app unless told), valid for an hour. */
  mint(claims: Record<string, unknown> = { apps: ['*'] }, user = this.user): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA' }).setSubject(user).setIssuedAt().setExpirationTime('1h').sign(this.key);
  }

  /** Resident set size in bytes (from /proc). */
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

/** A broker process with `flags`, for tests. */
export function startBrokerProcess(flags: string[] = [], env: Record<string, string> = {}, key = makeSigningKey()): Promise<BrokerProcess> {
  return BrokerProcess.start({ flags, env, key });
}
