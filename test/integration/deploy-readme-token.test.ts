import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { runCli } from '../helpers/cli.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';

/** deploy/README.md's "No identity provider yet?" recipe, run as written, then used. */
describe("deploy/README's key pair and token from openssl", () => {
  const containers = new TestContainers();
  const app = uniqueApp('recipe');
  const dir = mkdtempSync(join(tmpdir(), 'entry-recipe-'));
  let b: TestBroker | undefined;
  let token = '';

  beforeAll(async () => {
    const readme = readFileSync(new URL('../../deploy/README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## No identity provider yet?'));
    const recipe = /```sh\n([\s\S]*?)```/.exec(section)![1]!;
    // Without USER, as in a container's shell, cron or a systemd unit.
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['USER'];
    token = execFileSync('bash', ['-euc', `${recipe}\nprintf %s "$token"`], { cwd: dir, env, encoding: 'utf8' });
    b = await startTestBroker({ 'jwt-public-key': join(dir, 'jwt.pub.pem') });
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await b?.stop();
    await containers.removeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes a token the broker takes, for the user running it', async () => {
    const env = { ENTRY_CONFIG_DIR: join(dir, 'config'), ENTRY_TOKEN: '', ENTRY_BROKER: '' };
    const login = await runCli(['login', '-b', b!.url], env, token);
    expect(login.stderr.toString()).toMatch(/^enter: token saved for /);
    expect(login.status).toBe(0);
    const me = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
    const status = await runCli(['status', '-b', b!.url], env);
    expect(status.stdout.toString()).toMatch(new RegExp(`^user\\s+${me}$`, 'm'));
    const run = await runCli(['-b', b!.url, app, 'web', '1', '--', 'echo', 'in'], env);
    expect(run.stdout.toString()).toBe('in\n');
    expect(run.status).toBe(0);
  });
});
