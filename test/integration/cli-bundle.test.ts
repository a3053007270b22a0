import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';

const run = promisify(execFile);

describe('the bundled enter (dist/bin)', () => {
  // A folder with no node_modules on the way up: what the bundle needs must be inside it.
  const dir = mkdtempSync(join(tmpdir(), 'entry-cli-bundle-'));
  const bin = join(dir, 'bin');
  cpSync(dirname(CLI), bin, { recursive: true });
  const env = { ...process.env, HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'home', '.config'), ENTRY_BROKER: '', ENTRY_TOKEN: '' };
  const enter = (...args: string[]) => run(process.execPath, [join(bin, 'enter.js'), ...args], { env, encoding: 'utf8' });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs away from the checkout, its dependencies inside it', async () => {
    const { stdout } = await enter('--help');
    expect(stdout).toContain('enter <app> <proc> <instance> -- <cmd…>');
  });

  it('loads a lazily imported command from the chunks beside it', async () => {
    await enter('broker', 'add', 'lab', 'http://127.0.0.1:8022');
    const { stdout } = await enter('broker', 'ls');
    expect(stdout).toMatch(/lab\s+http:\/\/127\.0\.0\.1:8022/);
  });
});
