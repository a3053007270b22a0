import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TmuxTerminal } from '../helpers/tmux.js';

const CLI = fileURLToPath(new URL('../../dist/bin/enter.js', import.meta.url));

describe('the enter CLI in a real terminal', () => {
  const containers = new TestContainers();
  const app = uniqueApp();
  const dir = mkdtempSync(join(tmpdir(), 'entry-cli-'));
  let b: TestBroker;
  let term: TmuxTerminal | undefined;

  beforeAll(async () => {
    b = await startTestBroker();
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    term?.kill();
    await b.stop();
    await containers.removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  async function session(): Promise<TmuxTerminal> {
    term?.kill();
    term = new TmuxTerminal(100, 30, {
      ENTRY_BROKER: b.url,
      ENTRY_TOKEN: await b.mint({ apps: [app] }),
      ENTRY_CONFIG_DIR: dir,
      TERM: 'xterm-256color',
    });
    await term.waitFor(/local\$\s*$/m);
    return term;
  }

  it('opens a shell with the prompt, follows resizes, and restores the terminal on exit', async () => {
    const t = await session();
    t.line(`stty -g > ${dir}/before; node ${CLI} ${app} web 1; s=$?; stty -g > ${dir}/after; echo "status=$s"`);
    await t.waitFor(/bash-5\.2#\s*$/m);
    t.line('stty size; echo "term=$TERM"');
    await t.waitFor(/^30 100$/m);
    // The local TERM travels with the session (tmux sets its own).
    await t.waitFor(/^term=tmux-256color$/m);
    t.resize(120, 40);
    t.line('clear; stty size');
    await t.waitFor(/^40 120$/m);
    t.line("printf 'caf\\303\\251 \\342\\234\\223\\n'");
    await t.waitFor(/^café ✓$/m);
    // The remote terminal's line feeds reach this one as they are: without its CR, a line feed
    // goes down a line and stays in its column (the local terminal adds no CR of its own).
    t.line("stty -onlcr; printf 'abc\\ndef\\n'; stty onlcr");
    await t.waitFor(/^abc\n {3}def/m);
    t.line('exit 0');
    await t.waitFor(/^status=0$/m);
    await t.waitFor(/local\$\s*$/m);
    expect(readFileSync(`${dir}/after`, 'utf8')).toBe(readFileSync(`${dir}/before`, 'utf8'));
  });

  it('gives a forced TTY the size of the terminal still there when stdout is piped (-t … | cat)', async () => {
    const t = await session();
    // Docker sizes an exec's terminal once it has started: a command asking at once may find none yet.
    const size = 'for i in $(seq 1 100); do s=$(stty size 2>/dev/null); case "$s" in ""|"0 0") sleep 0.05;; *) echo "$s"; exit;; esac; done';
    t.line(`node ${CLI} -t ${app} web 1 -- sh -c '${size}' | cat; echo "status=$?"`);
    const screen = await t.waitFor(/^status=0$/m);
    expect(screen).toMatch(/^30 100\r?$/m);
  });

  it('sends Ctrl-C to the remote side as input and keeps the session', async () => {
    const t = await session();
    t.line(`stty -g > ${dir}/before2; node ${CLI} ${app} web 1; s=$?; stty -g > ${dir}/after2; echo "status=$s"`);
    await t.waitFor(/bash-5\.2#\s*$/m);
    t.line('sleep 30');
    await t.waitFor(/# sleep 30\s*$/m);
    for (let i = 0; i < 20; i++) t.keys('C-c');
    // The remote terminal echoes ^C: the interrupt went there, not to enter. Twenty quick ones
    // race the shell: a terminal flushes what was typed ahead of an interrupt (ISIG without
    // NOFLSH), so the line that shows the session is still there may need typing again.
    await t.waitFor(/\^C/);
    let answered = false;
    for (let attempt = 0; attempt < 5 && !answered; attempt++) {
      t.line('echo still-here');
      answered = await t.waitFor(/^still-here$/m, 3_000).then(
        () => true,
        () => false,
      );
    }
    expect(answered, 'the remote shell answers after the interrupts').toBe(true);
    t.line('exit 3');
    await t.waitFor(/^status=3$/m);
    expect(readFileSync(`${dir}/after2`, 'utf8')).toBe(readFileSync(`${dir}/before2`, 'utf8'));
  });

  it('prints the reason and exits non-zero when the broker goes away, terminal restored', async () => {
    const other = await startTestBroker();
    const t = await session();
    const token = await other.mint({ apps: [app] });
    t.line(`stty -g > ${dir}/before3; ENTRY_BROKER=${other.url} ENTRY_TOKEN=${token} node ${CLI} ${app} web 1; s=$?; stty -g > ${dir}/after3; echo "status=$s"`);
    await t.waitFor(/bash-5\.2#\s*$/m);
    await other.stop();
    const screen = await t.waitFor(/^status=255$/m);
    // On a line of its own, not after the prompt the session ended at.
    expect(screen).toMatch(/^enter: broker is shutting down/m);
    expect(readFileSync(`${dir}/after3`, 'utf8')).toBe(readFileSync(`${dir}/before3`, 'utf8'));
  });

  it('restores the terminal when killed with SIGQUIT or SIGINT, as with SIGTERM and SIGHUP', async () => {
    for (const sig of ['SIGQUIT', 'SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      const t = await session();
      t.line(`stty -g > ${dir}/before-${sig}; node ${CLI} ${app} web 1; s=$?; stty -g > ${dir}/after-${sig}; echo "status=$s"`);
      await t.waitFor(/bash-5\.2#\s*$/m);
      const pid = Number(execFileSync('pgrep', ['-f', '-n', '--', `${CLI} ${app} web 1`], { encoding: 'utf8' }).trim());
      process.kill(pid, sig);
      // The status of a program ended by that signal, and a word on why.
      const screen = await t.waitFor(new RegExp(`^status=${128 + osConstants.signals[sig]}$`, 'm'));
      expect(screen, sig).toMatch(new RegExp(`^enter: session ended by ${sig}$`, 'm'));
      expect(readFileSync(`${dir}/after-${sig}`, 'utf8'), sig).toBe(readFileSync(`${dir}/before-${sig}`, 'utf8'));
    }
  });

  it('says what is wrong and exits 255 when the target does not exist', async () => {
    const t = await session();
    t.line(`node ${CLI} ${app} web 9; echo "status=$?"`);
    const screen = await t.waitFor(/^status=255$/m);
    expect(screen).toContain(`enter: container not found: ${app}/web/9`);
  });
});
