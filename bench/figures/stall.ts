import { startBroker } from '../broker.js';
import { EntrySession } from '../entry-client.js';
import { figure, type Figure, type Suite, utf8 } from '../figure.js';
import { MB, RssSampler } from '../proc-stats.js';
import { sleep } from '../stats.js';
import { GiB, outputCommand } from './throughput.js';

/**
 * A client that stops reading while the command prints `bytes`: the broker must pause the
 * exec's stream instead of buffering. Measured on a fresh broker, so the heap left by other
 * figures does not hide growth. After the stall the client reads everything, which checks
 * that the stream resumes and nothing was lost.
 */
export const stall: Suite = {
  names: ['stall_rss_growth'],
  async run(ctx): Promise<Figure[]> {
    const bytes = ctx.quick ? 256 * 1024 * 1024 : GiB;
    const stallMs = ctx.quick ? 3_000 : 8_000;
    const broker = await startBroker();
    try {
      const token = await broker.mint();
      const target = ctx.target;
      await sleep(300);
      const idle = broker.rss();
      // Warm-up: the same output read normally, so the code paths are compiled and the heap has
      // the size any busy broker has; the baseline is the RSS after it.
      for (let i = 0; i < 3; i++) {
        const w = await EntrySession.open(broker.wsUrl, token, target, { argv: outputCommand(32 * 1024 * 1024).map((a) => utf8(a)), tty: false });
        await w.exit;
        await w.closed;
      }
      await sleep(1_000);
      const baseline = broker.rss();
      const sampler = new RssSampler(broker.pid).start(20);
      const s = await EntrySession.open(broker.wsUrl, token, target, { argv: outputCommand(bytes).map((a) => utf8(a)), tty: false });
      s.pause();
      let got = 0;
      s.onOutput = (data) => (got += data.length);
      await sleep(stallMs);
      const stallPeak = sampler.stop();
      const receivedWhileStalled = got;
      const drainSampler = new RssSampler(broker.pid).start(50);
      s.resume();
      const code = await s.exit;
      await s.closed;
      const drainPeak = drainSampler.stop();
      if (code !== 0) throw new Error(`head exited with ${code}`);
      if (got !== bytes) throw new Error(`received ${got} of ${bytes} bytes after the stall`);
      const growth = (stallPeak - baseline) / MB;
      ctx.log(`stall_rss_growth: ${growth.toFixed(1)} MB over ${(baseline / MB).toFixed(1)} MB while stalled ${stallMs} ms; peak while draining ${(drainPeak / MB).toFixed(1)} MB`);
      return [
        figure('stall_rss_growth', 'MB', 1, growth, null, {
          extra: {
            bytes,
            stall_ms: stallMs,
            rss_idle_MB: idle / MB,
            rss_baseline_MB: baseline / MB,
            growth_over_idle_MB: (stallPeak - idle) / MB,
            rss_peak_stalled_MB: stallPeak / MB,
            rss_peak_draining_MB: drainPeak / MB,
            received_while_stalled: receivedWhileStalled,
          },
          note: 'no direct counterpart: a direct client has no broker in between',
        }),
      ];
    } finally {
      await broker.stop();
    }
  },
};
