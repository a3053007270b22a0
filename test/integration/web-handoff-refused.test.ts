import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS } from '../../broker/errors.js';
import { decodeRequest, encodeResponse, encodeResumeTicket, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { launchChromium, terminalText } from '../helpers/browser.js';
import { StandInBroker } from '../helpers/stand-in-broker.js';

const GRACE_MS = 2_500;

/**
 * <entry-terminal> against a stand-in broker that, after the connection broke, answers every
 * resume as a broker that cannot hand it to the one holding the session (ENTRY_HANDOFF_REFUSED,
 * a TLS failure between them): the terminal tries again within the grace period, and when it
 * ends says that refusal rather than only "too late".
 */
describe('the browser terminal when every resume try is refused for a hand-off', () => {
  let broker: StandInBroker;
  let browser: Browser;
  let page: Page;
  const refusal = `${ERRORS.ENTRY_HANDOFF_REFUSED.message}: request r-9`;

  beforeAll(async () => {
    broker = await StandInBroker.start((ws, first) => {
      const send = (type: number, content: Uint8Array, code = '') => ws.send(encodeResponse(type, content, code));
      const type = decodeRequest(first).msgType;
      if (type === RequestType.START) {
        send(ResponseType.RESUMABLE, encodeResumeTicket({ session: 's-1', token: Buffer.from('resume-token'), outputOffset: 0, inputOffset: 0, graceMs: GRACE_MS, pingIntervalMs: 0 }));
        send(ResponseType.STDOUT, utf8('before\r\n'));
        // Broken, not closed: no close frame.
        setTimeout(() => ws.terminate(), 100);
      } else if (type === RequestType.RESUME) {
        send(ResponseType.CLOSE, utf8(`\r\n\x1b[31mentry: ${refusal}\x1b[0m\r\n`), 'ENTRY_HANDOFF_REFUSED');
        ws.close(ERRORS.ENTRY_HANDOFF_REFUSED.close, 'ENTRY_HANDOFF_REFUSED');
      }
    });
    browser = await launchChromium();
    page = await browser.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await broker?.stop();
  });

  it('keeps trying until the grace period ends, then ends with ENTRY_RESUME_EXPIRED and the refusal', async () => {
    await broker.openTerminal(page);
    await page.waitForFunction(() => (window as unknown as { closeInfo?: unknown }).closeInfo !== undefined, undefined, { timeout: 15_000 });
    const info = (await page.evaluate('window.closeInfo')) as { code: string; message: string };
    expect(info.code).toBe('ENTRY_RESUME_EXPIRED');
    expect(info.message).toBe(`the connection broke and the session could not be resumed in time (the last refusal: ${refusal})`);
    expect(await page.evaluate('window.states')).toEqual(['connecting', 'open', 'reconnecting', 'closed']);
    // The first connection, then more than one try: a refusal did not end them.
    expect(broker.upgrades.length).toBeGreaterThanOrEqual(3);
    expect(broker.upgrades.slice(1).every((u) => u.includes('resume=s-1'))).toBe(true);
    const text = await terminalText(page, '#t');
    expect(text).toContain('the last refusal: resume not handed on');
    // Shown once, at the end: the refusals passed over are not printed.
    expect(text.match(/resume not handed on/g)?.length).toBe(1);
  }, 30_000);
});
