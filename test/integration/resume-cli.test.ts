import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../client/api.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { TmuxTerminal } from '../helpers/tmux.js';

/**
 * The CLI and the TypeScript API resume by themselves through a proxy whose links are reset and
 * kept down for 2 s: each line of a running command arrives once and in order, the exit status
 * is the command's, and an interactive shell keeps its variables.
 */

const LINES = 40;
const SCRIPT = `for i in $(seq 1 ${LINES}); do echo "line $i"; sleep 0.25; done; exit 7`;
const expected = Array.from({ length: LINES }, (_, i) => `line ${i + 1}\n`).join('');

describe('the clients resume by themselves', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rcli');
  let b: TestBroker;
  let proxy: TcpProxy;
  let token = '';

  beforeAll(async () => {
    b = await startTestBroker();
    proxy = new TcpProxy(b.url);
    await proxy.start();
    await containers.entry(app, 'web', 1);
    token = await b.mint({ apps: [app] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await b?.stop();
    await containers.removeAll();
  });

  it('enter … -- cmd: 40 lines over 10 s, cut for 2 s in the middle: each line once, in order, exit 7, one status line', async () => {
    const child = spawn(process.execPath, [CLI, app, 'web', '1', '--', 'sh', '-c', SCRIPT], {
      env: { ...process.env, ENTRY_BROKER: proxy.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' },
    });
    let out = '';
    let err = '';
    let cut = 0;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!cut && out.includes('line 12\n')) {
        cut = Date.now();
        proxy.cut(2_000);
      }
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(cut).toBeGreaterThan(0);
    expect(out).toBe(expected);
    expect(status).toBe(7);
    expect(err).toBe('enter: connection lost, reconnecting…\n');
  }, 60_000);

  it('the TypeScript API: the same run across the same cut', async () => {
    const started = Date.now();
    const timer = setTimeout(() => proxy.cut(2_000), 3_000);
    const result = await run({ broker: proxy.url, token, target: { app, proc: 'web', instance: 1 }, command: ['sh', '-c', SCRIPT] });
    clearTimeout(timer);
    expect(Date.now() - started).toBeGreaterThan(9_000);
    expect(result.stdout.toString()).toBe(expected);
    expect(result.exitCode).toBe(7);
  }, 60_000);

  it('an interactive shell keeps its variables and a running loop prints each line once; the status line is dim and goes away', async () => {
    const term = new TmuxTerminal(100, 30, { ENTRY_BROKER: proxy.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent', TERM: 'xterm-256color' });
    try {
      await term.waitFor(/local\$\s*$/m);
      term.line(`node ${CLI} ${app} web 1`);
      await term.waitFor(/bash-5\.2#\s*$/m);
      term.line('KEPT=blip-$((6*7)); for i in $(seq 1 8); do echo "tick $i"; sleep 0.5; done');
      await term.waitFor(/^tick 2$/m);
      proxy.cut(2_000);
      await term.waitFor(/reconnecting \(\d+ s left\)/);
      await term.waitFor(/^tick 8$/m, 20_000);
      await term.waitFor(/bash-5\.2#\s*$/m);
      term.line('echo "kept:$KEPT"');
      const screen = await term.waitFor(/^kept:blip-42$/m);
      for (let i = 1; i <= 8; i++) expect(screen.match(new RegExp(`^tick ${i}$`, 'gm'))?.length, `tick ${i}`).toBe(1);
      expect(screen).not.toMatch(/reconnecting/);
      term.line('exit');
      await term.waitFor(/local\$\s*$/m);
    } finally {
      term.kill();
    }
  }, 60_000);
});
