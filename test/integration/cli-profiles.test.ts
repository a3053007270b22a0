import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SavedConfig } from '../../client/config/store.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI, runCli } from '../helpers/cli.js';
import { docker, TestContainers, uniqueApp } from '../helpers/containers.js';

// Async: the brokers run in this process and must keep answering while a shell runs.
const run = async (file: string, args: string[], env: NodeJS.ProcessEnv) => (await promisify(execFile)(file, args, { env, encoding: 'utf8' })).stdout.split('\n').filter(Boolean);

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('enter broker profiles, ls, status and completion', () => {
  const containers = new TestContainers();
  const app = uniqueApp('prof');
  const other = uniqueApp('oth');
  const root = mkdtempSync(join(tmpdir(), 'entry-profiles-'));
  let n = 0;
  let a: TestBroker;
  let b: TestBroker;
  /** A fresh config directory per test; ENTRY_* from the outer environment never leak in. */
  const fresh = () => {
    const dir = join(root, `cfg-${n++}`);
    return { dir, env: { ENTRY_CONFIG_DIR: dir, ENTRY_TOKEN: '', ENTRY_BROKER: '' } };
  };
  const read = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as SavedConfig;

  beforeAll(async () => {
    a = await startTestBroker();
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
    await containers.entry(app, 'web', 2);
    await containers.entry(app, 'worker', 1);
    await containers.entry(other, 'web', 1);
    await containers.start({ labels: { 'entry.app': app, 'entry.proc': 'cron', 'entry.instance': '1' }, stopped: true });
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await containers.removeAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('reads a config file from before profiles (current + brokers{url:{token}}) unchanged', async () => {
    const { dir, env } = fresh();
    mkdirSync(dir, { recursive: true });
    const token = await a.mint({ apps: [app] });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ current: a.url, brokers: { [a.url]: { token } } }), { mode: 0o600 });
    const ls = await runCli(['ls', '--json'], env);
    expect(ls.status, ls.stderr.toString()).toBe(0);
    expect(JSON.parse(ls.stdout.toString()).map((c: { proc: string }) => c.proc)).toEqual(['cron', 'web', 'web', 'worker']);
    const list = await runCli(['broker', 'ls', '--json'], env);
    expect(JSON.parse(list.stdout.toString())).toEqual([{ current: true, name: null, url: a.url, user: 'alice', login: 'token', expiresAt: expect.any(String) }]);
    // A scripted run with the old file: the token is used as it was.
    const run = await runCli([app, 'web', '1', '--', 'echo', 'old-file'], env);
    expect(run.stdout.toString()).toBe('old-file\n');
  });

  it('adds, lists, switches and removes profiles; each keeps its own token (0600)', async () => {
    const { dir, env } = fresh();
    mkdirSync(dir, { recursive: true });
    const tokenA = await a.mint({ apps: [app] }, { user: 'ann' });
    const tokenB = await b.mint({ apps: [other] }, { user: 'ben' });
    // A token saved for a URL before its profile existed moves into the profile.
    expect((await runCli(['login', '-b', a.url], env, tokenA)).status).toBe(0);
    const add = await runCli(['broker', 'add', 'prod', a.url], env);
    expect(add.status, add.stderr.toString()).toBe(0);
    expect(add.stderr.toString()).toContain(`added broker prod → ${a.url} (the default)`);
    expect(add.stderr.toString()).toContain(`the token saved for ${a.url} now belongs to prod`);
    expect(add.stderr.toString()).toContain(`prod answers: Entry ${pkg.version}`);
    // Loopback: nothing on the way to read the token.
    expect(add.stderr.toString()).not.toContain('is not https');
    expect((await runCli(['broker', 'add', 'staging', b.url.replace('http://', '')], env)).status).toBe(0);
    expect((await runCli(['login', '-b', 'staging'], env, tokenB)).status).toBe(0);
    const saved = read(dir);
    expect(saved.profiles).toEqual({ prod: { url: a.url, token: tokenA, expiresAt: expect.any(Number) }, staging: { url: b.url, token: tokenB, expiresAt: expect.any(Number) } });
    expect(saved.brokers).toEqual({});
    expect(statSync(join(dir, 'config.json')).mode & 0o777).toBe(0o600);
    // Logging in chose staging; `broker use` switches back.
    expect(saved.current).toBe('staging');
    expect((await runCli(['broker', 'use', 'prod'], env)).status).toBe(0);

    const table = (await runCli(['broker', 'ls'], env)).stdout.toString().split('\n');
    expect(table[0]).toMatch(/^CURRENT\s+NAME\s+URL\s+LOGIN$/);
    expect(table[1]).toMatch(new RegExp(`^\\*\\s+prod\\s+${a.url.replace(/\./g, '\\.')}\\s+ann, expires in (59|60)m$`));
    expect(table[2]).toMatch(/^\s+staging\s+http:\/\/127\.0\.0\.1:\d+\s+ben, expires in/);

    // -b NAME, -b URL (which finds the profile and its token) and ENTRY_BROKER=NAME.
    const whoDefault = JSON.parse((await runCli(['status', '--json'], env)).stdout.toString());
    expect(whoDefault.identity.user).toBe('ann');
    const whoNamed = JSON.parse((await runCli(['-b', 'staging', 'status', '--json'], env)).stdout.toString());
    expect(whoNamed.identity.user).toBe('ben');
    expect(whoNamed.broker).toMatchObject({ name: 'staging', url: b.url });
    const whoUrl = JSON.parse((await runCli(['status', '--json', '--broker', b.url], env)).stdout.toString());
    expect(whoUrl.identity.user).toBe('ben');
    const whoEnv = JSON.parse((await runCli(['status', '--json'], { ...env, ENTRY_BROKER: 'staging' })).stdout.toString());
    expect(whoEnv.identity.user).toBe('ben');
    const run = await runCli(['-b', 'staging', other, 'web', '1', '--', 'echo', 'via-staging'], env);
    expect(run.stdout.toString()).toBe('via-staging\n');

    const unknown = await runCli(['broker', 'use', 'nope'], env);
    expect(unknown.status).toBe(255);
    expect(unknown.stderr.toString()).toContain('no broker profile "nope" (known: prod, staging)');
    expect((await runCli(['broker', 'rm', 'staging'], env)).status).toBe(0);
    expect(Object.keys(read(dir).profiles!)).toEqual(['prod']);
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('lists targets as a table and as JSON, filtered by app', async () => {
    const { env } = fresh();
    const e = { ...env, ENTRY_BROKER: a.url, ENTRY_TOKEN: await a.mint({ apps: [app] }) };
    const text = (await runCli(['ls'], e)).stdout.toString();
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^APP\s+PROC\s+INSTANCE\s+STATE\s+HOST\s+AGE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 5).join(' '))).toEqual([
      `${app} cron 1 created local`,
      `${app} web 1 running local`,
      `${app} web 2 running local`,
      `${app} worker 1 running local`,
    ]);
    expect(lines[1]).toMatch(/\s(\d+s|\d+m)$/);
    // The token grants only `app`: the other app is not listed.
    expect(text).not.toContain(other);
    const all = await runCli(['ls', '--json'], { ...e, ENTRY_TOKEN: await a.mint({ apps: [`${app.slice(0, -2)}*`, other] }) });
    const entries = JSON.parse(all.stdout.toString()) as Array<Record<string, string>>;
    expect(entries).toHaveLength(5);
    expect(entries.map((c) => c.app).sort()).toEqual([app, app, app, app, other].sort());
    expect(entries.find((c) => c.app === app)).toEqual({ app, proc: 'cron', instance: '1', state: 'created', backend: 'docker', host: 'local', namespace: '', image: 'entry-demo:latest', name: expect.any(String), created: expect.any(String) });
    const only = await runCli(['ls', other, '--json'], { ...e, ENTRY_TOKEN: await a.mint({ apps: ['*'] }) });
    expect(JSON.parse(only.stdout.toString()).map((c: { app: string }) => c.app)).toEqual([other]);
    // A misspelt app lists nothing, and says which app was likely meant.
    const typo = await runCli(['ls', app.slice(0, -1)], e);
    expect(typo.stderr.toString()).toBe(`enter: nothing to enter in ${app.slice(0, -1)} on ${a.url}; did you mean ${app}?\n`);
    expect(typo.status).toBe(0);
    // An app the token does not grant lists nothing either (the broker lists only what the
    // token may enter): still 0, as an empty filter, and the hint says the token is why.
    const erin = { ...e, ENTRY_TOKEN: await a.mint({ apps: [app] }, { user: 'erin' }) };
    const notGranted = await runCli(['ls', 'zz-not-granted'], erin);
    expect(notGranted.stderr.toString()).toBe(`enter: nothing to enter in zz-not-granted on ${a.url}\n  Your token grants user erin ${app}, not zz-not-granted. Ask for zz-not-granted to be added to your token's apps.\n`);
    expect(notGranted.status).toBe(0);
    expect((await runCli(['ls', 'zz-not-granted', '--json'], erin)).stdout.toString()).toBe('[]\n');
    // A token granting no apps: the listing is empty because of the token, and says so.
    const none = await runCli(['ls'], { ...e, ENTRY_TOKEN: await a.mint({ apps: [] }, { user: 'dave' }) });
    expect(none.stderr.toString()).toBe(`enter: nothing to enter on ${a.url}\n  Your token grants user dave no apps. Ask for the apps you need to be added to your token's apps.\n`);
    expect(none.status).toBe(0);
  });

  it('status: reachable and version, user, expiry and grants; exit 0', async () => {
    const { env } = fresh();
    const token = await a.mint({ apps: [app, 'shop-*'], roles: ['dev'] }, { user: 'carol', expiresIn: '2h' });
    const r = await runCli(['status'], { ...env, ENTRY_BROKER: a.url, ENTRY_TOKEN: token });
    expect(r.status, r.stderr.toString()).toBe(0);
    const out = r.stdout.toString();
    expect(out).toMatch(new RegExp(`^broker\\s+${a.url.replace(/\./g, '\\.')}: reachable, Entry ${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
    expect(out).toMatch(/^token\s+token from ENTRY_TOKEN$/m);
    expect(out).toMatch(/^user\s+carol$/m);
    expect(out).toMatch(/^expires\s+\d{4}-\d\d-\d\dT\S+Z \(in (1h|2h)\)$/m);
    expect(out).toMatch(new RegExp(`^apps\\s+${app}, shop-\\*$`, 'm'));
    expect(out).toMatch(/^roles\s+dev$/m);
  });

  it('says what to do next: unreachable broker, expired token, bad token, missing grant', async () => {
    const { dir, env } = fresh();
    // Unreachable: the URL and where to check it.
    const closed = await closedPort();
    expect((await runCli(['broker', 'add', 'gone', `http://127.0.0.1:${closed}`], env)).status).toBe(0);
    const down = await runCli(['ls'], { ...env, ENTRY_TOKEN: 'x' });
    expect(down.status).toBe(255);
    expect(down.stderr.toString()).toBe(
      `enter: cannot reach broker http://127.0.0.1:${closed}: ECONNREFUSED\n  Check the broker address (gone is http://127.0.0.1:${closed}; \`enter broker ls\` lists them) and that the broker is running.\n`,
    );
    const downStatus = await runCli(['status'], { ...env, ENTRY_TOKEN: 'x' });
    expect(downStatus.status).toBe(255);
    expect(downStatus.stdout.toString()).toMatch(/^broker\s+gone \(http:\/\/127\.0\.0\.1:\d+\): unreachable: cannot reach broker/m);

    // Expired: caught before connecting, with the login command for this broker.
    expect((await runCli(['broker', 'add', 'prod', a.url], env)).status).toBe(0);
    const expired = await a.mint({ apps: [app] }, { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const refused = await runCli(['login', '-b', 'prod', '--token', expired], env);
    expect(refused.status).toBe(255);
    expect(refused.stderr.toString()).toMatch(/^enter: that token expired at /);
    const c = read(dir);
    c.profiles!['prod'] = { url: a.url, token: expired, expiresAt: Math.floor(Date.now() / 1000) - 60 };
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c), { mode: 0o600 });
    const late = await runCli(['-b', 'prod', app, 'web', '1', '--', 'true'], env);
    expect(late.status).toBe(255);
    expect(late.stderr.toString()).toMatch(/^enter: your token for prod expired at \S+: run `enter login -b prod`\n/);

    // Rejected by the broker (a token signed by someone else): log in again.
    const bad = await runCli([app, 'web', '1', '--', 'true'], { ...env, ENTRY_BROKER: a.url, ENTRY_TOKEN: await b.mint({ apps: [app] }) });
    expect(bad.stderr.toString()).toBe('enter: invalid access token: signature does not verify\n  The token comes from ENTRY_TOKEN: unset it, or set a valid one.\n');

    // Not permitted: which grant is missing, and what the token does grant.
    const forbidden = await runCli([app, 'web', '1', '--', 'true'], { ...env, ENTRY_BROKER: a.url, ENTRY_TOKEN: await a.mint({ apps: ['shop', 'billing-*'] }, { user: 'dave' }) });
    expect(forbidden.status).toBe(255);
    expect(forbidden.stderr.toString()).toBe(
      `enter: not permitted to enter this app: user dave has no grant for app ${app}\n  Missing grant: app "${app}" for user dave (your token grants apps: shop, billing-*). Ask for "${app}" to be added to your token's apps.\n`,
    );
  });

  it('login checks a token with the broker first: one it refuses is not saved, one it cannot check is, with a warning', async () => {
    const { dir, env } = fresh();
    expect((await runCli(['broker', 'add', 'prod', a.url], env)).status).toBe(0);
    // Signed by another broker's key, as after a dev broker restarts with a new one.
    const foreign = await runCli(['login', '-b', 'prod', '--token', await b.mint({ apps: [app] })], env);
    expect(foreign.stderr.toString()).toBe('enter: prod refused that token (invalid access token: signature does not verify): nothing saved\n');
    expect(foreign.status).toBe(255);
    const garbled = await runCli(['login', '-b', 'prod'], env, 'not-a-token\n');
    expect(garbled.stderr.toString()).toBe('enter: prod refused that token (invalid access token: malformed token): nothing saved\n');
    expect(read(dir).profiles!['prod']!.token).toBeUndefined();
    const good = await a.mint({ apps: [app] });
    expect((await runCli(['login', '-b', 'prod', '--token', good], env)).status).toBe(0);
    expect(read(dir).profiles!['prod']!.token).toBe(good);
    // A broker that cannot be asked: saved all the same (the login may come before the broker).
    const closed = await closedPort();
    const offline = await runCli(['login', '-b', `http://127.0.0.1:${closed}`, '--token', good], env);
    expect(offline.status).toBe(0);
    expect(offline.stderr.toString()).toMatch(/^enter: warning: the token could not be checked: cannot reach broker .*ECONNREFUSED\nenter: token saved for /);
  });

  it('login sends no token to a host named by a bare word (a profile mistyped, most likely): saved unchecked, as ENTRY_TOKEN is never sent there', async () => {
    const { dir, env } = fresh();
    expect((await runCli(['broker', 'add', 'prod', a.url], env)).status).toBe(0);
    const token = await a.mint({ apps: [app] });
    // `prdo` names a host that answers: in a network and mount namespace of the test's own, a
    // server on 127.0.0.1:80 that notes what it is sent.
    const ns = mkdtempSync(join(root, 'ns-'));
    writeFileSync(join(ns, 'hosts'), '127.0.0.1 prdo\n');
    const server = "require('node:http').createServer((q, s) => { require('node:fs').appendFileSync(process.argv[1], `${q.url} ${q.headers.authorization ?? '-'}\\n`); s.writeHead(404).end(); }).listen(80, '127.0.0.1', () => console.log('up'))";
    const script = 'ip link set lo up && mount --bind "$1/hosts" /etc/hosts && mkfifo "$1/ready" || exit 99; "$2" -e "$4" "$1/requests" >"$1/ready" & read up <"$1/ready"; "$2" "$3" login -b prdo --token "$5"; s=$?; kill $!; exit $s';
    const login = await runIn(['unshare', '--net', '--mount', '--', 'sh', '-c', script, 'sh', ns, process.execPath, CLI, server, token], env);
    expect(login.status, login.stderr).toBe(0);
    expect(existsSync(join(ns, 'requests')) ? readFileSync(join(ns, 'requests'), 'utf8') : '').toBe('');
    expect(login.stderr).toBe(
      'enter: warning: the token was not checked: http://prdo was named by a bare word, to which no token is sent unasked\nenter: token saved for http://prdo (taken as a host name: no profile is named "prdo"; did you mean -b prod? see `enter broker ls`)\n',
    );
    expect(read(dir).brokers['http://prdo']!.token).toBe(token);
  });

  it('prints bash and zsh completion that complete subcommands, apps, procs and instances from a short cache', async () => {
    const { dir, env } = fresh();
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'enter'), `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`);
    chmodSync(join(bin, 'enter'), 0o755);
    const e = { ...process.env, ...env, PATH: `${bin}:${process.env['PATH']}`, ENTRY_BROKER: a.url, ENTRY_TOKEN: await a.mint({ apps: [app] }) };

    const bashScript = (await runCli(['completion', 'bash'], env)).stdout.toString();
    expect(bashScript).toContain('complete -o default -F _enter_complete enter');
    writeFileSync(join(dir, 'enter.bash'), bashScript);
    const bash = (line: string, extra: Record<string, string> = {}) => {
      const words = line.split(' ');
      const script = `source ${dir}/enter.bash; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _enter_complete; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return run('bash', ['--norc', '--noprofile', '-c', script], { ...e, ...extra });
    };
    expect(await bash('enter ')).toEqual(expect.arrayContaining(['broker', 'completion', 'login', 'logout', 'ls', 'status', app]));
    expect(await bash(`enter ${app.slice(0, 6)}`)).toEqual([app]);
    expect(await bash(`enter ${app} `)).toEqual(['cron', 'web', 'worker']);
    expect(await bash(`enter ${app} w`)).toEqual(['web', 'worker']);
    expect(await bash(`enter -u app ${app} web `)).toEqual(['1', '2']);
    expect(await bash(`enter ${app} web 1 -- `)).toEqual([]);
    expect(await bash('enter broker ')).toEqual(['add', 'ls', 'rm', 'use']);
    expect(await bash('enter completion ')).toEqual(['bash', 'zsh']);
    expect(await bash('enter --esc')).toEqual(['--escape']);
    expect(await bash('enter --v')).toEqual(['--version']);
    expect(await bash(`enter ${app} web 1 --ver`)).toEqual(['--version']);
    // Every long option the help lists is offered.
    const help = (await runCli(['--help'], env)).stdout.toString();
    const listed = [...help.slice(help.indexOf('Options:')).matchAll(/^ +(?:-\w, )? *(--[a-z][a-z-]*)/gm)].map((m) => m[1]!);
    expect(listed).toEqual(expect.arrayContaining(['--broker', '--no-stdin', '--interactive', '--resume']));
    expect(await bash('enter --')).toEqual(expect.arrayContaining(listed));

    // The listing is cached briefly: a container started now shows up only after the cache expires.
    const cache = join(dir, 'cache');
    expect(readdirSync(cache).filter((f) => f.startsWith('targets-'))).toHaveLength(1);
    await containers.entry(app, 'web', 3);
    expect(await bash(`enter ${app} web `)).toEqual(['1', '2']);
    expect(await bash(`enter ${app} web `, { ENTRY_COMPLETION_CACHE_SEC: '0' })).toEqual(['1', '2', '3']);

    // zsh: the same candidates through compadd (stubbed to print them).
    const zshScript = (await runCli(['completion', 'zsh'], env)).stdout.toString();
    expect(zshScript.split('\n')[0]).toBe('#compdef enter');
    writeFileSync(join(dir, '_enter'), zshScript);
    // zsh is one of the packages the test command installs.
    const zsh = (...words: string[]) =>
      run('zsh', ['-f', '-c', `compdef() {}; compadd() { print -l -- "\${(@P)\${@[-1]}}" }; _files() { print FILES }; source ${dir}/_enter; words=(${words.map((w) => `'${w}'`).join(' ')}); CURRENT=${words.length}; _enter`], e);
    expect(await zsh('enter', app, '')).toEqual(['cron', 'web', 'worker']);
    expect(await zsh('enter', app, 'web', '')).toEqual(['1', '2', '3']);
    expect(await zsh('enter', app, 'web', '1', '--', '')).toEqual(['FILES']);
    expect(await zsh('enter', '--ver')).toEqual(['--version']);
    await docker.getContainer((await docker.listContainers({ filters: { label: [`entry.app=${app}`, 'entry.instance=3'] } }))[0]!.Id).remove({ force: true });
  });
});

/** A command run with the test's environment: its exit status and what it wrote to stderr. */
function runIn(argv: string[], env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr: Buffer.concat(err).toString() }));
  });
}

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
