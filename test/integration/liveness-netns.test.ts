import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerProcess } from '../helpers/broker-process.js';
import { CLI } from '../helpers/cli.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { eventually } from '../helpers/sessions.js';

/**
 * A peer whose network vanishes: the client runs in a network namespace of this test's own and
 * the broker in another, joined by a veth pair in a private /30 made here (nothing of it in the
 * machine's own namespace). Taking the client's link down leaves both sockets open and nothing closed:
 * the broker must find out by itself (nothing acknowledged by the client's kernel), end the
 * session with ENTRY_PEER_TIMEOUT in the audit trail, and end its processes (docker top).
 *
 * Short bounds by default (the mechanism); ENTRY_LIVENESS_DEFAULTS=1 runs the broker with its
 * default settings to measure the real detection times.
 */

const DEFAULTS = process.env['ENTRY_LIVENESS_DEFAULTS'] === '1';
const PING_MS = DEFAULTS ? 10_000 : 1_000;
const PEER_TIMEOUT_MS = DEFAULTS ? 30_000 : 4_000;
/**
 * A ping has to be outstanding, then unanswered for the timeout, seen at the next check; and a
 * few seconds for a loaded machine (the suites share two cores).
 */
const BOUND_MS = PING_MS + PEER_TIMEOUT_MS + PING_MS + 3_000;
/**
 * A reader that stopped reading has a closed window: the kernel probes it at growing intervals
 * (up to 2 minutes), and the first unanswered probe starts the clock. Here it paused seconds
 * before the link went down, so its probes are still close together.
 */
const PAUSED_BOUND_MS = BOUND_MS + 15_000;

const id = randomBytes(3).toString('hex');
const NS = `entry-lv-${id}`;
const BROKER_NS = `entry-lvb-${id}`;
const BROKER_IF = `elb${id}`;
const NS_IF = `eln${id}`;
const octet = 16 + (randomBytes(1)[0]! % 200);
const BROKER_ADDR = `10.213.${octet}.1`;
const NS_ADDR = `10.213.${octet}.2`;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const inNs = (...args: string[]) => ip('netns', 'exec', NS, ...args);

interface AuditLine {
  msg?: string;
  audit?: string;
  user?: string;
  how?: string;
  code?: string;
  reason?: string;
}

describe('a peer whose network vanished is found and its processes ended', () => {
  const containers = new TestContainers();
  const app = uniqueApp('gone');
  let containerId = '';
  let b: BrokerProcess;
  const children: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    ip('netns', 'add', NS);
    ip('netns', 'add', BROKER_NS);
    // Made inside the broker's namespace, its peer moved to the client's: never in the machine's.
    ip('-n', BROKER_NS, 'link', 'add', BROKER_IF, 'type', 'veth', 'peer', 'name', NS_IF, 'netns', NS);
    ip('-n', BROKER_NS, 'addr', 'add', `${BROKER_ADDR}/30`, 'dev', BROKER_IF);
    ip('-n', BROKER_NS, 'link', 'set', BROKER_IF, 'up');
    inNs('ip', 'addr', 'add', `${NS_ADDR}/30`, 'dev', NS_IF);
    inNs('ip', 'link', 'set', NS_IF, 'up');
    inNs('ip', 'link', 'set', 'lo', 'up');
    b = await BrokerProcess.start({
      launcher: ['ip', 'netns', 'exec', BROKER_NS],
      listen: `${BROKER_ADDR}:0`,
      recordings: false,
      flags: [
        '--kill-grace', '300',
        // What is measured is how soon the loss is found; a resumable session would then wait out
        // its grace period for the CLI to come back (resume.test.ts).
        '--resume-grace', '0',
        ...(DEFAULTS ? [] : ['--ping-interval', String(PING_MS), '--peer-timeout', String(PEER_TIMEOUT_MS)]),
      ],
    });
    containerId = await containers.entry(app, 'web', 1);
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await b?.stop();
    await containers.removeAll();
    // Deleting a namespace deletes its end of the pair, and with it the other end.
    for (const ns of [NS, BROKER_NS]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Never made.
      }
    }
  });

  /** The CLI inside the namespace; resolves once `ready` shows on its stdout. */
  const enterFromNs = async (user: string, args: string[], input = '', readOn = true): Promise<ChildProcessWithoutNullStreams> => {
    const token = await b.mint({ apps: [app] }, user);
    const child = spawn('ip', ['netns', 'exec', NS, process.execPath, CLI, app, 'web', '1', '--', ...args], {
      env: { ...process.env, ENTRY_BROKER: b.url, ENTRY_TOKEN: token, ENTRY_CONFIG_DIR: '/nonexistent' },
    });
    children.push(child);
    // Input stays open: the idle shell waits on it.
    if (input) child.stdin.write(input);
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (c: Buffer) => {
        // Only the start of the output matters; a printing shell is read on and thrown away.
        if (seen.length < 4096) seen += c.toString();
        if (seen.includes('READY')) {
          child.stdout.off('data', onData);
          // A paused reader: its CLI stops reading the socket once this pipe is full.
          if (readOn) child.stdout.resume();
          else child.stdout.pause();
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => reject(new Error(`the CLI exited (${code}) before READY: ${seen}`)));
    });
    return child;
  };

  const endOf = (user: string): AuditLine | undefined =>
    b.logs.map((l) => JSON.parse(l) as AuditLine).find((l) => l.msg === 'audit' && l.audit === 'session.end' && l.user === user);

  it('takes the link down under an idle shell, a shell printing without pause, and a paused reader', async () => {
    const before = (await containerProcesses(containerId)).sort();
    await enterFromNs('idle-shell', ['sh'], 'sleep 1001 &\necho READY\n');
    await enterFromNs('busy-shell', ['sh', '-c', 'echo READY; yes printing-without-pause']);
    await enterFromNs('paused-reader', ['sh', '-c', 'echo READY; yes printing-to-a-paused-reader'], '', false);
    await eventually(async () => {
      const ps = await containerProcesses(containerId);
      return ps.some((p) => p.includes('sleep 1001')) && ps.some((p) => p.includes('printing-without-pause')) && ps.some((p) => p.includes('printing-to-a-paused-reader'));
    }, 'the sessions running');
    // The paused reader's backlog fills every buffer on the way: its window closes.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(endOf('paused-reader'), 'a paused reader is kept').toBeUndefined();

    inNs('ip', 'link', 'set', NS_IF, 'down');
    const down = Date.now();
    const found: Record<string, number> = {};
    const USERS = ['idle-shell', 'busy-shell', 'paused-reader'];
    await eventually(
      async () => {
        for (const user of USERS) if (found[user] === undefined && endOf(user)) found[user] = Date.now() - down;
        return Object.keys(found).length === USERS.length;
      },
      'every end',
      PAUSED_BOUND_MS + 20_000,
    );
    for (const user of USERS) {
      expect(endOf(user), user).toMatchObject({ how: 'failed', code: 'ENTRY_PEER_TIMEOUT' });
      expect(endOf(user)!.reason).toMatch(/nothing acknowledged for \d+ s|connection failed/);
    }
    const reaped = await eventually(async () => {
      const ps = await containerProcesses(containerId);
      return JSON.stringify(ps.sort()) === JSON.stringify(before);
    }, 'no process of either session left', 15_000);
    console.log(
      `liveness-netns (ping ${PING_MS} ms, peer timeout ${PEER_TIMEOUT_MS} ms): idle peer found in ${found['idle-shell']} ms, ` +
        `a peer with output on its way in ${found['busy-shell']} ms (bound ${BOUND_MS} ms), a paused reader in ${found['paused-reader']} ms (bound ${PAUSED_BOUND_MS} ms); processes gone ${reaped} ms after that`,
    );
    expect(found['idle-shell']).toBeLessThanOrEqual(BOUND_MS);
    expect(found['busy-shell']).toBeLessThanOrEqual(BOUND_MS);
    expect(found['paused-reader']).toBeLessThanOrEqual(PAUSED_BOUND_MS);
    if (DEFAULTS) expect(found['idle-shell']).toBeLessThanOrEqual(60_000);
  }, 120_000);
});
