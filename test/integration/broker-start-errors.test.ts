import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BROKER = fileURLToPath(new URL('../../dist/broker/main.js', import.meta.url));

/** Where these brokers write their dev token: never the user's own, which a running dev broker may use. */
const tokenDir = mkdtempSync(join(tmpdir(), 'entry-start-token-'));
afterAll(() => rmSync(tokenDir, { recursive: true, force: true }));

/** Runs the built broker to its exit (it exits at once on a bad setting): status and stderr. */
function brokerExit(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const defaults = ['--recordings-dir', '--state-dir'].filter((flag) => !args.includes(flag)).flatMap((flag) => [flag, 'none']);
    const token = ['--dev-token-file', join(tokenDir, 'token')];
    const identity = args.includes('--jwt-public-key') ? [] : ['--dev', ...token];
    execFile(process.execPath, [BROKER, ...identity, '--log-level', 'error', ...defaults, ...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stderr });
    });
  });
}

describe('a broker that cannot listen where it is told', () => {
  let taken: Server;
  let port = 0;

  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    port = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => taken.close(r));
  });

  it('checks its key and its recordings folder before it listens (or touches an engine)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entry-start-'));
    try {
      const junk = join(dir, 'key.pem');
      writeFileSync(junk, 'not a key\n');
      // The address is taken: a broker that listened first would say so instead.
      const key = await brokerExit(['--listen', `127.0.0.1:${port}`, '--jwt-public-key', junk]);
      expect(key.status).toBe(2);
      expect(key.stderr).toMatch(/^entry-broker: invalid setting --jwt-public-key: /);
      writeFileSync(join(dir, 'a-file'), '');
      const recordings = await brokerExit(['--listen', `127.0.0.1:${port}`, '--recordings-dir', join(dir, 'a-file', 'recordings')]);
      expect(recordings.status).toBe(2);
      expect(recordings.stderr).toMatch(/^entry-broker: invalid setting --recordings-dir: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says which setting holds an address in use, in one line, and exits 2', async () => {
    const main = await brokerExit(['--listen', `127.0.0.1:${port}`]);
    expect(main).toEqual({ status: 2, stderr: `entry-broker: invalid setting --listen: cannot listen on 127.0.0.1:${port}: in use by another process\n` });
    const metrics = await brokerExit(['--listen', '127.0.0.1:0', '--metrics-listen', `127.0.0.1:${port}`]);
    expect(metrics).toEqual({ status: 2, stderr: `entry-broker: invalid setting --metrics-listen: cannot listen on 127.0.0.1:${port}: in use by another process\n` });
  });

  it("leaves the dev token of the broker that has the address as it was", async () => {
    // The token file of a dev broker already running there (deploy/dev/up.sh logs in from it).
    const file = join(tokenDir, 'token');
    writeFileSync(file, 'the running broker\'s token\n');
    expect((await brokerExit(['--listen', `127.0.0.1:${port}`])).status).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe('the running broker\'s token\n');
  });
});

describe('a broker whose recordings folder cannot be made', () => {
  it('names --recordings-dir in one line and exits 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entry-start-'));
    try {
      writeFileSync(join(dir, 'a-file'), '');
      const under = join(dir, 'a-file', 'recordings');
      const r = await brokerExit(['--listen', '127.0.0.1:0', '--recordings-dir', under]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^entry-broker: invalid setting --recordings-dir: cannot make ${under}: ENOTDIR`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('entry-broker --version', () => {
  it('prints the version and exits 0', async () => {
    for (const args of [['--version'], ['--log-level', 'debug', '--version']]) {
      const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, [BROKER, ...args], { timeout: 30_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
      expect(out, args.join(' ')).toMatch(/^entry-broker \d+\.\d+\.\d+\n$/);
    }
  });
});

describe('a broker started with an option it does not have', () => {
  it('names it in one line and exits 2, rather than printing the whole help', async () => {
    expect(await brokerExit(['--liste', '127.0.0.1:0'])).toEqual({ status: 2, stderr: 'entry-broker: invalid setting --liste: no such option (entry-broker --help lists them)\n' });
    expect(await brokerExit(['serve'])).toEqual({ status: 2, stderr: 'entry-broker: invalid setting on the command line: unexpected "serve": the broker takes options only (entry-broker --help lists them)\n' });
  });
});
