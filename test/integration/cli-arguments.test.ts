import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SUBCOMMANDS, VALUE_OPTIONS } from '../../client/cli/arguments.js';
import { decodeExecSpec, decodeRequest, encodeResponse, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { CLI, runCli } from '../helpers/cli.js';
import { FakeBroker } from '../helpers/fake-broker.js';

/**
 * The CLI's arguments and its answers to a broker that answers oddly, against a stand-in broker
 * on loopback that records each START and serves the HTTP calls the test gives it.
 */

type Route = (res: ServerResponse, method: string, path: string) => void;

/** Accepts every upgrade, records the START's spec, and ends the command with status 0. */
function recordingBroker(route: Route = (res) => res.writeHead(404).end()): { fake: FakeBroker; starts: ReturnType<typeof decodeExecSpec>[] } {
  const starts: ReturnType<typeof decodeExecSpec>[] = [];
  const fake = new FakeBroker(
    (_n, req, socket, head) =>
      fake.accept(req, socket, head, (ws) =>
        ws.once('message', (data: Buffer) => {
          const m = decodeRequest(data);
          if (m.msgType === RequestType.START) starts.push(decodeExecSpec(m.content));
          ws.send(encodeResponse(ResponseType.EXIT, utf8('0')));
          ws.send(encodeResponse(ResponseType.CLOSE, utf8('exited with code 0')));
          ws.close();
        }),
      ),
    (req, res) => route(res, req.method ?? 'GET', req.url ?? '/'),
  );
  return { fake, starts };
}

const json = (res: ServerResponse, body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const html = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>a login page</body></html>');

describe('the enter CLI', () => {
  let configDir = '';
  let fake: FakeBroker | undefined;
  beforeAll(() => {
    configDir = mkdtempSync(join(tmpdir(), 'entry-cli-args-'));
  });
  afterAll(() => rmSync(configDir, { recursive: true, force: true }));
  afterEach(async () => {
    await fake?.stop();
    fake = undefined;
  });
  const env = () => ({ ENTRY_BROKER: fake?.url ?? 'http://127.0.0.1:1', ENTRY_TOKEN: 'a-token', ENTRY_CONFIG_DIR: configDir });
  const enter = (args: string[], extra: Record<string, string> = {}) => runCli(args, { ...env(), ...extra });

  it('takes the last of a flag given twice, as docker does', async () => {
    const b = recordingBroker();
    fake = await b.fake.start();
    const r = await enter(['-b', 'http://127.0.0.1:1', '-b', fake.url, 'app', 'web', '1', '-u', 'root', '-u', 'app', '-w', '/a', '-w', '/b', '--', 'id']);
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
    expect(b.starts).toHaveLength(1);
    expect(b.starts[0]).toMatchObject({ user: 'app', workdir: '/b' });
  });

  it('prints its usage indented as written, with --version among the options, and answers --help and --version anywhere', async () => {
    const usage = [
      'Usage:',
      '  enter <app> <proc> <instance>              interactive shell',
      '  enter <app> <proc> <instance> -- <cmd…>    run a command',
      '  enter ls [app]                             what you may enter',
      '',
    ].join('\n');
    const help = await enter(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout.toString()).toContain(`\n${usage}`);
    expect(help.stdout.toString()).toMatch(/^ {2}-V, --version +print enter's version +\[boolean\]$/m);
    // Wherever -h is, a command after -- included: help, not a refusal of that command.
    for (const args of [['app', 'web', '1', '-h', '--', 'pwd'], ['app', 'web', '1', '-w', '/srv', '--help', '--', 'ls']]) {
      const r = await enter(args);
      expect(r.stderr.toString(), args.join(' ')).toBe('');
      expect(r.stdout.toString()).toContain(`\n${usage}`);
      expect(r.status).toBe(0);
    }
    // `enter` alone prints the same usage, on stderr.
    const bare = await enter([]);
    expect(bare.stderr.toString()).toContain(`\n${usage}`);
    for (const args of [['-V'], ['-b', 'prod', '--version'], ['ls', '--version']]) {
      const version = await enter(args);
      expect(version.stdout.toString(), args.join(' ')).toMatch(/^enter \d+\.\d+\.\d+\n$/);
      expect(version.status).toBe(0);
    }
  });

  it('reads by hand exactly the options its help lists as taking a value', async () => {
    // Each subcommand's help, and the broker profile commands'; an option entry runs from its
    // flags to the next entry, its type on its first line or a later one.
    const helps = await Promise.all([[], ...SUBCOMMANDS.map((c) => [c]), ['broker', 'add']].map((c) => enter([...c, '--help'])));
    const listed = new Set<string>();
    for (const help of helps) {
      const options = help.stdout.toString().split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? '';
      for (const entry of options.split(/\n(?=\s{2}(?:-\w, )?--|\s{6}--)/)) {
        if (!/\[(string|number)\]/.test(entry)) continue;
        for (const flag of entry.trim().split(/\s{2,}/)[0]!.split(', ')) listed.add(flag);
      }
    }
    expect(listed.size).toBeGreaterThan(10);
    expect([...listed].sort()).toEqual([...VALUE_OPTIONS].sort());
  });

  it('refuses a flag without its value, before reaching the broker', async () => {
    const b = recordingBroker();
    fake = await b.fake.start();
    for (const args of [['-u'], ['-w'], ['-c'], ['-e'], ['-u', '']]) {
      const r = await enter(['app', 'web', '1', ...args, '--', 'id']);
      expect(r.stderr.toString(), args.join(' ')).toBe(`enter: ${args[0]} needs a value\n`);
      expect(r.status, args.join(' ')).toBe(255);
    }
    const empty = await enter(['-b', '', 'app', 'web', '1', '--', 'id']);
    expect(empty.stderr.toString()).toBe('enter: -b needs a value\n');
    expect(fake.upgrades).toHaveLength(0);
  });

  it('takes the last of -t and -T, as ssh does', async () => {
    const b = recordingBroker();
    fake = await b.fake.start();
    await enter(['app', 'web', '1', '-T', '-t', '--', 'id']);
    await enter(['app', 'web', '1', '-t', '-T', '--', 'id']);
    // yargs' own spellings of the same.
    await enter(['app', 'web', '1', '-t', '--tty=false', '--', 'id']);
    await enter(['app', 'web', '1', '--no-tty=false', '--', 'id']);
    // docker's -it works as meant; -i alone asks for nothing more than the default.
    await enter(['-it', 'app', 'web', '1', '--', 'id']);
    await enter(['-i', 'app', 'web', '1', '--', 'id']);
    expect(b.starts.map((s) => s.tty)).toEqual([true, false, false, true, true, false]);
  });

  it('reads ENTRY_RESUME as on or off, refuses anything else, and ignores ENTRY_ESCAPE without a keyboard', async () => {
    const b = recordingBroker();
    fake = await b.fake.start();
    for (const value of ['off', 'false', '0']) expect((await enter(['app', 'web', '1', '--', 'id'], { ENTRY_RESUME: value })).status, value).toBe(0);
    expect(b.starts.map((s) => Boolean(s.resumable))).toEqual([false, false, false]);
    const bad = await enter(['app', 'web', '1', '--', 'id'], { ENTRY_RESUME: 'maybe' });
    expect(bad.stderr.toString()).toMatch(/^enter: ENTRY_RESUME wants 1 or 0 .*got "maybe"\n$/);
    expect(bad.status).toBe(255);
    expect((await enter(['app', 'web', '1', '--', 'id'], { ENTRY_ESCAPE: 'xx' })).status).toBe(0);
    expect(b.starts).toHaveLength(4);
  });

  it('says unknown words as they were written, and suggests the subcommand a misspelt one was', async () => {
    const said = async (args: string[]) => {
      const r = await enter(args);
      expect(r.status, args.join(' ')).toBe(255);
      return r.stderr.toString();
    };
    expect(await said(['app', 'web', '1', 'ls', '-la', '/tmp'])).toBe('enter: unknown arguments: ls -la\n  A command to run goes after --: enter APP PROC INSTANCE -- CMD ARGS… (see enter --help).\n');
    expect(await said(['app', 'web', '1', '-x', '--', 'id'])).toBe(
      "enter: unknown option -x\n  A command's own options go after --: enter APP PROC INSTANCE -- CMD -x (enter's own are in enter --help).\n",
    );
    expect(await said(['ls', '--jsn'])).toBe('enter: unknown option --jsn\n  See enter ls --help for its options.\n');
    expect(await said(['sesions'])).toBe('enter: missing <proc> and <instance>\n  Did you mean enter sessions? Usage: enter <app> <proc> <instance> [-- <cmd…>]; enter ls lists what you may enter.\n');
    expect(await said(['lss', 'shop'])).toMatch(/^enter: missing <instance>\n {2}Did you mean enter ls\? /);
    expect(await said(['broker', 'lss'])).toBe('enter: no broker command lss\n  Did you mean enter broker ls? The broker commands: enter broker add|use|ls|rm (see enter broker --help).\n');
    // As for apps and procs, each of the closest commands where more than one is as close.
    expect(await said(['broker', 'lst'])).toMatch(/^enter: no broker command lst\n {2}Did you mean enter broker list or enter broker ls\? /);
    expect(await said(['version'])).toMatch(/^enter: missing <proc> and <instance>\n {2}Did you mean enter --version\? /);
    // A name far from every subcommand is taken for an app, without a guess.
    expect(await said(['shop'])).toMatch(/^enter: missing <proc> and <instance>\n {2}Usage: /);
  });

  it('points a command without -- and an app named like a subcommand to the right spelling', async () => {
    const noDashes = await enter(['app', 'web', '1', 'ls', '-l']);
    expect(noDashes.stderr.toString()).toContain('A command to run goes after --: enter APP PROC INSTANCE -- CMD ARGS…');
    expect(noDashes.status).toBe(255);
    const shadowed = await enter(['-b', 'http://127.0.0.1:1', 'ls', 'web', '1']);
    expect(shadowed.stderr.toString()).toContain('For an app named ls: enter exec ls PROC INSTANCE.');
    const listingWithCommand = await enter(['ls', '--', 'foo']);
    expect(listingWithCommand.stderr.toString()).toMatch(/^enter: enter ls runs no command/);
    expect(listingWithCommand.status).toBe(255);
    const short = await enter(['demo', 'web']);
    expect(short.stderr.toString()).toBe('enter: missing <instance>\n  Usage: enter <app> <proc> <instance> [-- <cmd…>]; enter ls lists what you may enter.\n');
    expect(short.status).toBe(255);
    expect((await enter(['exec', 'demo'])).stderr.toString()).toMatch(/^enter: missing <proc> and <instance>\n/);
    expect((await enter(['exec'])).stderr.toString()).toMatch(/^enter: missing <app>, <proc> and <instance>\n/);
    // A command with nothing before its -- lacks the same words, said the same way (not the whole help).
    for (const args of [['--'], ['--', 'ls']]) {
      const r = await enter(args);
      expect(r.stderr.toString(), args.join(' ')).toBe('enter: missing <app>, <proc> and <instance>\n  Usage: enter <app> <proc> <instance> [-- <cmd…>]; enter ls lists what you may enter.\n');
      expect(r.status, args.join(' ')).toBe(255);
    }
    expect((await enter(['kill'])).stderr.toString()).toBe('enter: missing <id>\n  Usage: enter kill <id> (see enter kill --help).\n');
    expect((await enter(['broker', 'use'])).stderr.toString()).toBe('enter: missing <name>\n  Usage: enter broker use <name> (see enter broker use --help).\n');
    expect((await enter(['broker', 'add', 'prod'])).stderr.toString()).toBe('enter: missing <url>\n  Usage: enter broker add <name> <url> (see enter broker add --help).\n');
    expect((await enter(['broker', 'add', 'prod', 'http://'])).stderr.toString()).toBe(
      'enter: broker address "http://" is not a URL: give one such as https://entry.example.com, or HOST:PORT\n',
    );
    const bare = await enter([]);
    expect(bare.stderr.toString()).toContain('enter <app> <proc> <instance> -- <cmd…>');
    expect(bare.status).toBe(255);
    const version = await enter(['--version']);
    expect(version.stdout.toString()).toMatch(/^enter \d+\.\d+\.\d+\n$/);
    expect(version.status).toBe(0);
  });

  it('stops quietly with 141 when the reader of a listing goes away, and fails with 255 on a full disk', async () => {
    const containers = Array.from({ length: 20_000 }, (_, i) => ({ app: 'app', proc: 'web', instance: String(i), state: 'running' }));
    fake = await recordingBroker((res) => json(res, { containers })).fake.start();
    const shell = (script: string) =>
      new Promise<{ fd3: string; stderr: string }>((resolve, reject) => {
        const child = spawn('/bin/bash', ['-c', script], { env: { ...process.env, ...env(), ENTER: `"${process.execPath}" "${CLI}"` }, stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
        let stderr = '';
        let fd3 = '';
        child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
        (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => (fd3 += c.toString()));
        child.on('error', reject);
        child.on('close', () => resolve({ fd3: fd3.trim(), stderr }));
      });
    // The status of the left side of a pipe, written to fd 3.
    const piped = await shell(`{ eval "$ENTER ls"; echo $? >&3; } | head -1 >/dev/null`);
    expect(piped).toEqual({ fd3: '141', stderr: '' });
    const full = await shell(`eval "$ENTER ls" >/dev/full; echo $? >&3`);
    expect(full.fd3).toBe('255');
    expect(full.stderr).toMatch(/^enter: writing the output failed: ENOSPC/);
    expect(full.stderr).not.toMatch(/\n\s+at /);
  });

  it('says so when the broker answers with something else than what it asked for', async () => {
    fake = await recordingBroker((res) => html(res)).fake.start();
    const status = await enter(['status']);
    expect(status.stdout.toString()).toMatch(/unreachable: broker .* answered \/api\/config with something enter does not understand/);
    expect(status.status).toBe(255);
    for (const args of [['sessions'], ['kill', 'abc'], ['replay', 'abc']]) {
      const r = await enter(args);
      expect(r.stderr.toString(), args[0]).toMatch(/^enter: .*(does not understand|is not asciicast v2)/);
      expect(r.stderr.toString(), args[0]).not.toMatch(/TypeError|Cannot read properties|\n\s+at /);
      expect(r.status, args[0]).toBe(255);
    }
  });

  it('prints the status with control characters the broker answered as blanks', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    fake = await recordingBroker((res, _method, path) => {
      if (path === '/api/config') return json(res, { version: '1.0\x1b[2J', oidc: null });
      if (path === '/api/whoami') return json(res, { user: 'mallory\x1b]0;owned\x07', apps: ['shop\x9b31m'], roles: [], admin: false, expiresAt });
      res.writeHead(404).end();
    }).fake.start();
    const status = await enter(['status']);
    const out = status.stdout.toString();
    expect(out).toMatch(/reachable, Entry 1\.0 \[2J$/m);
    expect(out).toMatch(/^user +mallory ]0;owned $/m);
    expect(out).toMatch(/^apps +shop 31m$/m);
    expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(status.status).toBe(0);
  });

  it('gives up on a broker that accepts and never answers, naming the wait', async () => {
    fake = await recordingBroker(() => undefined).fake.start();
    const started = Date.now();
    const r = await enter(['sessions']);
    expect(r.stderr.toString()).toMatch(/^enter: cannot reach broker .*: no answer within 10 s\n/);
    expect(r.status).toBe(255);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);

  it('refuses a session id the broker could not route (empty, a pasted blank, a slash) before asking it, and sends a well-formed one', async () => {
    for (const command of ['kill', 'watch', 'replay']) {
      for (const id of ['', 'abc ', '../x', '%41']) {
        const r = await enter([command, id]);
        expect(r.stderr.toString(), `${command} ${JSON.stringify(id)}`).toBe(`enter: not a session id: ${JSON.stringify(id)} (enter sessions lists them)\n`);
        expect(r.status).toBe(255);
      }
      const sent = await enter([command, '0b7e4e0c-3f7c-4c51-9d0e-6f3b9b2b1a11']);
      expect(sent.stderr.toString()).toMatch(/^enter: cannot reach broker http:\/\/127\.0\.0\.1:1/);
    }
  });

  it('refuses replay numbers it cannot play by, and a token with a line break inside', async () => {
    for (const [flag, value] of [['--speed', '0.001'], ['--speed', 'abc'], ['--idle-limit', '-5'], ['--idle-limit', 'abc']] as const) {
      const r = await enter(['replay', 'abc', flag, value]);
      expect(r.stderr.toString(), `${flag} ${value}`).toMatch(new RegExp(`^enter: ${flag} wants a number from`));
      expect(r.status).toBe(255);
    }
    const broken = await enter(['app', 'web', '1', '--', 'id'], { ENTRY_TOKEN: 'abc\ndef' });
    expect(broken.stderr.toString()).toMatch(/^enter: ENTRY_TOKEN holds a line break/);
    expect(broken.status).toBe(255);
  });

  it('fails at once, naming the directory and why, where its config directory cannot be made; completion still answers', async () => {
    const file = join(configDir, 'a-file');
    writeFileSync(file, '');
    // Under /proc, Node 20's recursive mkdir retried for ever: the timeout ends such a run.
    const cases = [
      [`/proc/entry-test-${process.pid}/cfg`, '/proc takes no new directories (ENOENT)'],
      [join(file, 'cfg'), `${file} is not a directory`],
    ] as const;
    for (const [dir, why] of cases) {
      const login = await runCli(['login', '-b', 'http://127.0.0.1:1'], { ENTRY_CONFIG_DIR: dir, ENTRY_TOKEN: '', ENTRY_BROKER: '' }, 'a-token', 10_000);
      expect(login.signal, dir).toBeNull();
      expect(login.stderr.toString()).toContain(`enter: cannot create the config directory ${dir}: ${why}\n`);
      expect(login.status).toBe(255);
    }
    // The listing is not cached there, and completion offers it all the same.
    fake = await recordingBroker((res) => json(res, { containers: [{ app: 'shop', proc: 'web', instance: '1', state: 'running' }] })).fake.start();
    const completion = await runCli(['__complete', 'sh'], { ...env(), ENTRY_CONFIG_DIR: cases[0][0], ENTRY_CACHE_DIR: '' }, undefined, 10_000);
    expect(completion.signal).toBeNull();
    expect(completion.stdout.toString()).toBe('shop\n');
  });

  it('caches a listing in the config directory only where that exists: a listing never makes it', async () => {
    fake = await recordingBroker((res) => json(res, { containers: [{ app: 'shop', proc: 'web', instance: '1', state: 'running' }] })).fake.start();
    const missing = join(configDir, 'no-config-yet');
    for (const args of [['ls'], ['__complete', 'sh']]) {
      const r = await enter(args, { ENTRY_CONFIG_DIR: missing, ENTRY_CACHE_DIR: '' });
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout.toString()).toContain('shop');
      expect(existsSync(missing), args.join(' ')).toBe(false);
    }
    // Once saving config has made it, the cache goes in it, private.
    mkdirSync(missing, { mode: 0o700 });
    expect((await enter(['ls'], { ENTRY_CONFIG_DIR: missing, ENTRY_CACHE_DIR: '' })).status).toBe(0);
    expect(readdirSync(join(missing, 'cache'))).toEqual([expect.stringMatching(/^targets-[0-9a-f]{16}\.json$/)]);
    expect(statSync(join(missing, 'cache')).mode & 0o777).toBe(0o700);
  });

  it('names what is wrong in a hand-edited config file, and still prints completion with a stale CA path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entry-cli-config-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ current: 'prod', profiles: { prod: 'http://x' } }));
      const r = await runCli(['ls'], { ENTRY_CONFIG_DIR: dir, ENTRY_TOKEN: 't' });
      expect(r.stderr.toString()).toMatch(/^enter: cannot read .*config\.json: profiles\.prod is not an object/);
      expect(r.status).toBe(255);
      const completion = await runCli(['completion', 'bash'], { ENTRY_CONFIG_DIR: dir, ENTRY_CA_FILE: join(dir, 'no-such-ca.pem') });
      expect(completion.status).toBe(0);
      expect(completion.stdout.toString()).toContain('complete ');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
