import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRequest, encodeResponse, encodeResumeTicket, RequestType, ResponseType, utf8 } from '../../proto/codec.js';
import { launchChromium } from '../helpers/browser.js';
import { StandInBroker } from '../helpers/stand-in-broker.js';

/**
 * <entry-terminal> against a stand-in broker whose connection breaks right after EXIT, before
 * CLOSE (a link lost at that moment): the exit status is known and all the output came before
 * it, so the terminal ends with it rather than resuming, as the CLI does.
 */
describe('the browser terminal when the connection breaks between EXIT and CLOSE', () => {
  let broker: StandInBroker;
  let browser: Browser;
  let page: Page;
  /** What the stand-in sends as EXIT's content: each test sets it. */
  let exitContent = '3';

  beforeAll(async () => {
    broker = await StandInBroker.start((ws, first) => {
      if (decodeRequest(first).msgType !== RequestType.START) return;
      const send = (type: number, content: Uint8Array) => ws.send(encodeResponse(type, content));
      send(ResponseType.RESUMABLE, encodeResumeTicket({ session: 's-1', token: Buffer.from('resume-token'), outputOffset: 0, inputOffset: 0, graceMs: 60_000, pingIntervalMs: 0 }));
      send(ResponseType.STDOUT, utf8('last words\r\n'));
      send(ResponseType.EXIT, utf8(exitContent));
      // Gone before the CLOSE: no close frame, as a link that broke.
      setImmediate(() => ws.terminate());
    });
    browser = await launchChromium();
    page = await browser.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await broker?.stop();
  });

  /** Opens a terminal on a fresh page; resolves once it ended or began to resume, with what it told. */
  async function runTerminal(): Promise<{ states: string[]; info: { code: string; exitCode: number | undefined; message: string } | undefined }> {
    await broker.openTerminal(page);
    // Either it ends, or it tries to resume (a second upgrade): whichever comes first.
    await page.waitForFunction(() => (window as unknown as { closeInfo?: unknown }).closeInfo !== undefined || ((window as unknown as { states?: string[] }).states ?? []).includes('reconnecting'), undefined, { timeout: 15_000 });
    return { states: (await page.evaluate('window.states')) as string[], info: (await page.evaluate('window.closeInfo')) as { code: string; exitCode: number | undefined; message: string } | undefined };
  }

  it('ends with the exit status it got, and does not try to resume a process that has exited', async () => {
    exitContent = '3';
    broker.upgrades.length = 0;
    const { states, info } = await runTerminal();
    expect(states).not.toContain('reconnecting');
    expect(info?.exitCode).toBe(3);
    expect(broker.upgrades).toHaveLength(1);
  }, 30_000);

  it('ends as a malformed message, with no exit status, when EXIT carries no status from 0 to 255', async () => {
    for (const content of ['3x', '256', '', '-1']) {
      exitContent = content;
      broker.upgrades.length = 0;
      const { states, info } = await runTerminal();
      expect(states, content).not.toContain('reconnecting');
      expect(info, content).toMatchObject({ code: 'ENTRY_BAD_FRAME', message: `malformed exit status ${JSON.stringify(content)} from the broker` });
      expect(info?.exitCode, content).toBeUndefined();
      expect(broker.upgrades, content).toHaveLength(1);
    }
  }, 60_000);
});
