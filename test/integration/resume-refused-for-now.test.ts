import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecConnection, type ReconnectStatus } from '../../client/protocol/connection.js';
import { launchChromium, mountTerminal, typeLine, waitForTerminal } from '../helpers/browser.js';
import { startTestBroker, type TestBroker } from '../helpers/broker.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { TestRedis } from '../helpers/redis.js';
import { eventually } from '../helpers/sessions.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

/**
 * A resume the broker refuses for the moment, because its shared store does not answer: the
 * client tries again, as for a broker it cannot reach, and the session comes back whole.
 */
describe('a resume refused while the shared store does not answer', () => {
  const containers = new TestContainers();
  const app = uniqueApp('rr');
  const redis = new TestRedis();
  let b: TestBroker;
  let proxy: TcpProxy;

  let browser: Browser | undefined;
  let brokerStopped = false;

  beforeAll(async () => {
    if (!existsSync(`${CONSOLE_DIR}entry-terminal.js`)) throw new Error('dist/console/entry-terminal.js is missing: run npm run build:web first');
    await redis.start();
    b = await startTestBroker({ 'redis-url': redis.url });
    proxy = new TcpProxy(b.url);
    await proxy.start();
    await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    await browser?.close();
    redis.unpause();
    await proxy?.stop();
    if (!brokerStopped) await b?.stop();
    await redis.stop();
    await containers.removeAll();
  });

  it('is tried again until the store answers, and the command ends with all its output and its status', { timeout: 90_000 }, async () => {
    const token = await b.mint({ apps: [app] });
    const conn = await ExecConnection.open({ broker: proxy.url, token, target: { app, proc: 'web', instance: 1 }, resume: true, spec: { argv: ['sh', '-c', 'echo start; sleep 3; echo done; exit 4'].map((a) => Buffer.from(a)) } });
    let out = '';
    conn.on('stdout', (d: Buffer) => (out += d.toString()));
    const attempts: number[] = [];
    conn.on('reconnecting', (r: ReconnectStatus) => attempts.push(r.attempt));
    let resumed = 0;
    conn.on('resumed', () => resumed++);
    await eventually(async () => out === 'start\n', 'the first line');
    redis.pause();
    proxy.cut();
    // The first try is refused (ENTRY_STORE_UNAVAILABLE, once the store call gives up); a second
    // follows only if the client took the refusal as passing.
    await eventually(async () => attempts.length >= 2, 'a second resume try', 30_000);
    redis.unpause();
    const end = await conn.done;
    expect(end.code).toBe('');
    expect(end.exitCode).toBe(4);
    expect(out).toBe('start\ndone\n');
    expect(resumed).toBe(1);
  });

  it('in the browser too: the terminal keeps reconnecting, then prints each line of a running loop once', { timeout: 90_000 }, async () => {
    const token = await b.mint({ apps: [app] });
    browser = await launchChromium();
    const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
    // The page and the socket both go through the proxy: one origin, one link to cut.
    await page.goto(`${proxy.url}/healthz`);
    // With the token on the upgrade: the resume itself is refused (a ticket's request would be, first).
    await mountTerminal(page, app, token, { recordStates: true, bearer: true });
    await typeLine(page, '#t', 'for i in $(seq 1 10); do echo "tick $i"; sleep 0.5; done');
    await waitForTerminal(page, '#t', /^tick 2$/m);
    const refusals = () => b.logs.filter((l) => l.includes('ENTRY_STORE_UNAVAILABLE')).length;
    const before = refusals();
    // Stopped rather than paused: each try is refused at once, well within the terminal's bound on a try.
    await redis.stop();
    proxy.cut();
    await eventually(async () => refusals() > before + 1, 'the broker to refuse two resumes', 30_000);
    await redis.start();
    const text = await waitForTerminal(page, '#t', /^tick 10$/m);
    for (let i = 1; i <= 10; i++) expect(text.match(new RegExp(`^tick ${i}$`, 'gm'))?.length, `tick ${i}`).toBe(1);
    expect(text).not.toContain('shared state unavailable');
    expect(await page.evaluate('window.states')).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    // Once taken back, the session's own end is no refusal of a resume: a draining broker's
    // CLOSE is shown and ends the terminal.
    brokerStopped = true;
    await b.stop();
    await waitForTerminal(page, '#t', /shutting down/);
    expect(await page.evaluate('window.states')).toEqual(['connecting', 'open', 'reconnecting', 'open', 'closed']);
  });
});
