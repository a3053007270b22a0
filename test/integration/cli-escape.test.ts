import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI } from '../helpers/cli.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { TmuxTerminal } from '../helpers/tmux.js';

describe('escape sequences in interactive sessions (ssh-style ~)', () => {
  const containers = new TestContainers();
  const app = uniqueApp('esc');
  const dir = mkdtempSync(join(tmpdir(), 'entry-escape-'));
  let b: TestBroker;
  let id: string;
  let term: TmuxTerminal | undefined;

  beforeAll(async () => {
    b = await startTestBroker();
    id = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    term?.kill();
    await b.stop();
    await containers.removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  async function shell(flags = '', broker = b.url): Promise<TmuxTerminal> {
    term?.kill();
    term = new TmuxTerminal(100, 30, { ENTRY_BROKER: broker, ENTRY_TOKEN: await b.mint({ apps: [app] }), ENTRY_CONFIG_DIR: dir, TERM: 'xterm-256color' });
    await term.waitFor(/local\$\s*$/m);
    term.line(`stty -g > ${dir}/before; node ${CLI} ${flags} ${app} web 1; s=$?; stty -g > ${dir}/after; echo "status=$s"`);
    await term.waitFor(/bash-5\.2#\s*$/m);
    return term;
  }

  it('~. after Enter ends the session: status 255, terminal restored, remote shell gone', async () => {
    const t = await shell();
    t.line('echo marker-$((6*7))');
    await t.waitFor(/^marker-42$/m);
    // Right after Enter: the escape is recognised.
    t.keys('~', '.');
    const screen = await t.waitFor(/^status=255$/m);
    expect(screen).toContain(`enter: connection to ${app}/web/1 closed.`);
    expect(readFileSync(`${dir}/after`, 'utf8')).toBe(readFileSync(`${dir}/before`, 'utf8'));
    await eventually(async () => !(await containerProcesses(id)).some((p) => /bash/.test(p)), 'the session shell to end');
  });

  it('~. ends the session while the link to the broker is down, with typed input waiting to be sent', async () => {
    const link = new TcpProxy(b.url);
    await link.start();
    try {
      const t = await shell('', link.url);
      t.line('echo marker-$((6*7))');
      await t.waitFor(/^marker-42$/m);
      // Down for longer than the test waits: the session could only end by the escape.
      link.cut(60_000);
      await t.waitFor(/connection lost, reconnecting/);
      t.line('echo typed-while-down');
      t.keys('~', '.');
      const screen = await t.waitFor(/^status=255$/m, 10_000);
      expect(screen).toContain(`enter: connection to ${app}/web/1 closed.`);
      expect(readFileSync(`${dir}/after`, 'utf8')).toBe(readFileSync(`${dir}/before`, 'utf8'));
    } finally {
      await link.stop();
    }
  });

  it('~? lists the escapes; ~~ sends one ~; a ~ inside a line is just a ~', async () => {
    const t = await shell();
    t.keys('~', '?');
    await t.waitFor(/~\.\s+- end the session/);
    await t.waitFor(/~~\s+- send the escape character by typing it twice/);
    // Still connected.
    t.line('echo a~.b');
    await t.waitFor(/^a~\.b$/m);
    // Keys typed while bash still has the terminal are not echoed: cat's own shell says when
    // bash has handed it over.
    t.line("sh -c 'echo cat-starts; exec cat > /tmp/tilde'");
    await t.waitFor(/^cat-starts$/m);
    t.keys('~', '~');
    t.line('home');
    t.keys('C-d');
    await t.waitFor(/bash-5\.2#\s*$/m);
    t.line('cat /tmp/tilde; echo');
    await t.waitFor(/^~home$/m);
    t.line('exit 4');
    await t.waitFor(/^status=4$/m);
  });

  it('--escape none passes ~. through; --escape ^] makes Ctrl-] the escape', async () => {
    let t = await shell('--escape none');
    t.keys('~', '.', 'Enter');
    await t.waitFor(/~\.: command not found/);
    t.line('exit 5');
    await t.waitFor(/^status=5$/m);

    t = await shell("--escape '^]'");
    t.keys('~', '.', 'Enter');
    await t.waitFor(/~\.: command not found/);
    t.keys('C-]', '.');
    const screen = await t.waitFor(/^status=255$/m);
    expect(screen).toContain(`enter: connection to ${app}/web/1 closed.`);
  });
});
