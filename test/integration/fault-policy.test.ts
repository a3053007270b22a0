import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ResponseType } from '../../proto/codec.js';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { healthz } from '../helpers/hardening.js';
import { WireClient } from '../helpers/wire-client.js';

/**
 * What the broker does with a fault outside every request boundary (README, "Faults"): an
 * unhandled rejection is logged and the broker keeps serving; an uncaught exception is logged,
 * every session is told and ended, and the process exits with 70 for its supervisor.
 */

const INJECTOR = fileURLToPath(new URL('../fixtures/inject-fault.mjs', import.meta.url));

interface FaultLine {
  msg: string;
  where?: string;
  kind?: string;
  stack?: string;
}

function faultLines(broker: BrokerProcess): FaultLine[] {
  return broker.logs.filter((l) => l.includes('"internal fault"')).map((l) => JSON.parse(l) as FaultLine);
}

async function waitForLog(broker: BrokerProcess, pattern: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!broker.logs.some((l) => l.includes(pattern))) {
    if (Date.now() > deadline) throw new Error(`no log line with ${pattern}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('faults outside any request', () => {
  const containers = new TestContainers();
  let broker: BrokerProcess | undefined;
  afterEach(async () => {
    await broker?.stop();
    await containers.removeAll();
  });

  async function start(kind: 'reject' | 'throw') {
    const app = uniqueApp('fp');
    await containers.entry(app, 'web', 1);
    broker = await startBrokerProcess([], { NODE_OPTIONS: `--import=${INJECTOR}`, ENTRY_TEST_FAULT: kind });
    const token = await broker.mint({ apps: [app] });
    const live = await WireClient.connect(broker.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1' });
    live.send(1, '80 24');
    live.type('echo re""ady\r');
    await live.waitFor(() => live.stdoutText().includes('ready'), 'the shell');
    return { broker, live };
  }

  it('logs an unhandled rejection with its stack and keeps serving every session', async () => {
    const { broker: b, live } = await start('reject');
    b.child.kill('SIGUSR2');
    await waitForLog(b, 'injected rejection');
    const [line] = faultLines(b);
    expect(line).toMatchObject({ where: 'process', kind: 'unhandledRejection' });
    expect(line!.stack).toContain('inject-fault.mjs');
    expect(await healthz(b.url)).toBe(200);
    live.type('echo st""ill\r');
    await live.waitFor(() => live.stdoutText().includes('still'), 'the shell after the fault');
    expect(b.child.exitCode).toBeNull();
  });

  it('logs an uncaught exception, tells every session why and exits with 70', async () => {
    const { broker: b, live } = await start('throw');
    b.child.kill('SIGUSR2');
    expect(await b.exited).toBe(70);
    const [line] = faultLines(b);
    expect(line).toMatchObject({ where: 'process', kind: 'uncaughtException' });
    expect(line!.stack).toContain('injected exception');
    await live.closed;
    const close = live.messages.find((m) => m.msgType === ResponseType.CLOSE);
    expect(new TextDecoder().decode(close?.content)).toContain('shutting down');
  });
});
