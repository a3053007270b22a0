import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { CLI } from '../helpers/cli.js';
import { TmuxTerminal } from '../helpers/tmux.js';

/** `enter login` against a broker without OIDC asks for a token, hidden, in a real terminal. */
describe('the hidden token prompt of enter login', () => {
  let b: TestBroker;
  let term: TmuxTerminal | undefined;
  const root = mkdtempSync(join(tmpdir(), 'entry-prompt-'));

  beforeAll(async () => {
    b = await startTestBroker();
  });
  afterEach(() => {
    term?.kill();
    term = undefined;
  });
  afterAll(async () => {
    await b.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function prompt(dir: string): Promise<TmuxTerminal> {
    term = new TmuxTerminal(100, 20, { ENTRY_CONFIG_DIR: dir, ENTRY_BROKER: b.url, ENTRY_TOKEN: '', TERM: 'xterm-256color' });
    await term.waitFor(/local\$\s*$/m);
    term.line(`node ${CLI} login; echo "status=$?"`);
    await term.waitFor(/Paste your Entry token \(input hidden\):/);
    return term;
  }

  it('Ctrl-C at the prompt exits 130 and saves nothing', async () => {
    const dir = mkdtempSync(join(root, 'cfg-'));
    const t = await prompt(dir);
    t.keys('-l', 'half-typed');
    t.keys('C-c');
    const screen = await t.waitFor(/^status=\d+$/m);
    expect(screen).toMatch(/^status=130$/m);
    expect(screen).not.toContain('half-typed');
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });

  it('Ctrl-D at the prompt says no token was given, exits 255 and saves nothing', async () => {
    const dir = mkdtempSync(join(root, 'cfg-'));
    const t = await prompt(dir);
    t.keys('C-d');
    const screen = await t.waitFor(/^status=\d+$/m);
    expect(screen).toMatch(/enter: no token given/);
    // Not the login that was just run as the next step.
    expect(screen).not.toMatch(/Run `enter login/);
    expect(screen).toMatch(/^status=255$/m);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });

  it('a pasted token is saved, unseen', async () => {
    const dir = mkdtempSync(join(root, 'cfg-'));
    const token = await b.mint({ apps: ['x'] });
    const t = await prompt(dir);
    t.line(token);
    const screen = await t.waitFor(/^status=\d+$/m);
    expect(screen).toMatch(/^status=0$/m);
    expect(screen).not.toContain(token.slice(0, 20));
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toContain(token);
  });
});
