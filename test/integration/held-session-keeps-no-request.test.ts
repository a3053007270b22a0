import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestType } from '../../proto/codec.js';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { TestContainers, uniqueApp } from '../helpers/containers.js';
import { NodeInspector } from '../helpers/inspector.js';
import { openCommand } from '../helpers/sessions.js';
import type { WireClient } from '../helpers/wire-client.js';

/**
 * What a held session keeps of its upgrade: a session lasts hours, and the request it began
 * with (headers, the raw token) is garbage once the WebSocket is open. Counted in the heap of
 * a broker process through its inspector, after full collections.
 */
const HELD = 10;
const BACKGROUND_RESPONSES = 2;

describe('a held session', () => {
  const containers = new TestContainers();
  const app = uniqueApp('hk');
  const target = { app, proc: 'web', instance: 1 };
  const sessions: WireClient[] = [];
  let broker: BrokerProcess;
  let inspector: NodeInspector;

  beforeAll(async () => {
    broker = await startBrokerProcess([], { NODE_OPTIONS: '--inspect=127.0.0.1:0' });
    await containers.entry(app, 'web', 1);
    inspector = await NodeInspector.attach(broker.logs);
  });
  afterAll(async () => {
    for (const s of sessions) s.ws.terminate();
    inspector?.close();
    await broker?.stop();
    await containers.removeAll();
  });

  /** Opens a `cat` session with a token of its own and waits until it echoes. */
  async function hold(i: number): Promise<string> {
    const token = await broker.mint({ apps: [app, `held-${i}`] });
    const s = await openCommand(broker.wsUrl, token, target, ['cat']);
    sessions.push(s);
    s.send(RequestType.PLAIN, `ping ${i}\n`);
    await s.waitFor(() => s.stdoutText().includes(`ping ${i}\n`), `session ${i} echoing`);
    return token;
  }

  it('keeps neither its upgrade request nor its token', async () => {
    await hold(0);
    await inspector.collectGarbage();
    const before = (await inspector.countObjects(['IncomingMessage']))['IncomingMessage']!;
    const tokens: string[] = [];
    for (let i = 1; i <= HELD; i++) tokens.push(await hold(i));
    await inspector.collectGarbage();
    const after = (await inspector.countObjects(['IncomingMessage']))['IncomingMessage']!;
    // A request kept per session grows the count by HELD; the broker's own HTTP with Docker
    // (a list, an inspect, the events stream) may have one or two responses live at either count.
    expect(after - before).toBeLessThanOrEqual(BACKGROUND_RESPONSES);
    // Node's pool of HTTP parsers may still point at the last request it parsed: all but the last token.
    await inspector.collectGarbage();
    const found = await inspector.countStrings(tokens.slice(0, -1));
    expect(found).toEqual(tokens.slice(0, -1).map(() => 0));
  });
});
