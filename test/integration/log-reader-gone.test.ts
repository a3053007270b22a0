import { afterAll, describe, expect, it } from 'vitest';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';

/**
 * The broker's log is its stderr, often a pipe to `tee`, `logger` or a log shipper that may
 * restart. When that reader goes away, lines are lost; the broker and its sessions are not.
 */
describe('a broker whose log reader goes away', () => {
  let b: BrokerProcess | undefined;
  afterAll(async () => {
    await b?.stop();
  });

  it('keeps serving, and does not drain or exit', async () => {
    b = await startBrokerProcess();
    const exited = b.exited.then((code) => `exited with ${code}`);
    b.child.stderr!.destroy();
    // Each refused token is a log line, now written to a pipe with no reader (EPIPE).
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${b.url}/api/whoami`, { headers: { authorization: 'Bearer not-a-token' } });
      expect(res.status).toBe(401);
    }
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    // What is ruled out (a drain, then exit 70) takes a few milliseconds: a second is far past it.
    const outcome = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), 1_000))]);
    expect(outcome).toBe('still running');
  });
});
