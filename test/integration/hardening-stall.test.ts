import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeResponse, encodeExecSpec, encodeRequest, RequestType, ResponseType } from '../../proto/codec.js';
import { type BrokerProcess, startBrokerProcess } from '../helpers/broker-process.js';
import { containerProcesses, TestContainers, uniqueApp } from '../helpers/containers.js';
import { healthz, mb, summaryLine, timedEcho, within } from '../helpers/hardening.js';
import { eventually, openCommand } from '../helpers/sessions.js';

/**
 * A client that stops reading while the container prints 1 GiB: the broker (a separate
 * process, so its RSS is its own) must stay within 32 MB of where it was, the process in the
 * container must be held back, and once the client reads again it gets exactly the bytes printed.
 */

const GIB = 1024 * 1024 * 1024;
const BLOCKS = 1024;
/** Each block is an 8-digit counter and a fixed random part: 1 MiB, so 1024 blocks are 1 GiB. */
const BLOCK_BODY = 1024 * 1024 - 8;
const STALL_MS = 5_000;
const RSS_LIMIT = 32 * 1024 * 1024;

/** Prints block after block and records how far it got in /tmp/progress. */
const GENERATOR = `i=0; while [ $i -lt ${BLOCKS} ]; do printf "%08d" $i; cat /tmp/block; i=$((i+1)); echo $i > /tmp/progress; done`;

/** A protocol-2 client that keeps only a running count and hash of what it receives. */
class CountingClient {
  bytes = 0;
  readonly hash = createHash('sha256');
  exitCode: number | undefined;
  closeMessage: { text: string; code: string } | undefined;
  readonly firstOutput: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly ws: WebSocket;

  constructor(wsUrl: string, headers: Record<string, string>, argv: string[], pauseOnFirstOutput: boolean) {
    this.ws = new WebSocket(wsUrl, { headers: { ...headers, 'entry-protocol': '2' }, perMessageDeflate: false });
    this.ws.on('open', () => this.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: argv.map((a) => Buffer.from(a)) }))));
    let first: () => void;
    this.firstOutput = new Promise((r) => (first = r));
    this.ws.on('message', (data: Buffer) => {
      const m = decodeResponse(data);
      if (m.msgType === ResponseType.STDOUT) {
        if (this.bytes === 0 && pauseOnFirstOutput) this.ws.pause();
        this.bytes += m.content.length;
        this.hash.update(m.content);
        first();
      } else if (m.msgType === ResponseType.EXIT) {
        this.exitCode = Number(Buffer.from(m.content).toString());
      } else if (m.msgType === ResponseType.CLOSE) {
        this.closeMessage = { text: Buffer.from(m.content).toString(), code: m.code };
      }
    });
    this.closed = new Promise((resolve) => this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => undefined);
  }
}

const execFileAsync = promisify(execFile);

/** Runs a command with `docker exec` directly (instrumentation, not through the broker); its stdout. */
async function inContainer(id: string, script: string): Promise<string> {
  return (await execFileAsync('docker', ['exec', id, 'sh', '-c', script], { encoding: 'utf8' })).stdout;
}

const figures = {
  bytesPrinted: -1,
  bytesReceived: -1,
  bytesLost: -1,
  baselineRss: 0,
  maxRssStalled: 0,
  bytesWhileStalled: -1,
  blockedAtBlock: -1,
  transferMs: -1,
  leaked: -1,
  survived: 0,
};

describe('a client that stops reading while 1 GiB is printed', () => {
  const containers = new TestContainers();
  const app = uniqueApp('hs');
  const target = { app, proc: 'web', instance: 1 };
  let broker: BrokerProcess;
  let containerId: string;
  let token: string;
  const block = randomBytes(BLOCK_BODY);
  let expectedHash = '';

  beforeAll(async () => {
    broker = await startBrokerProcess();
    containerId = await containers.entry(app, 'web', 1);
    token = await broker.mint({ apps: [app] });
    // The expected stream, computed here: the counters and the block, in order.
    const h = createHash('sha256');
    for (let i = 0; i < BLOCKS; i++) {
      h.update(String(i).padStart(8, '0'));
      h.update(block);
    }
    expectedHash = h.digest('hex');
    // The block reaches the container through the broker itself.
    const upload = await openCommand(broker.wsUrl, token, target, ['sh', '-c', 'cat > /tmp/block; sha256sum < /tmp/block']);
    for (let pos = 0; pos < block.length; pos += 64 * 1024) upload.send(RequestType.PLAIN, block.subarray(pos, pos + 64 * 1024));
    upload.send(RequestType.STDIN_EOF);
    await upload.closed;
    expect(upload.stdoutText().split(' ')[0]).toBe(createHash('sha256').update(block).digest('hex'));
    // Warm the broker up (first session, JIT) before the baseline is taken.
    await timedEcho(broker.wsUrl, token, target);
  });
  afterAll(async () => {
    await broker?.stop();
    await containers.removeAll();
    console.log(
      summaryLine('hardening-stall', {
        inputs: figures.bytesPrinted,
        faults_survived: figures.survived,
        bytes_lost: figures.bytesLost,
        processes_leaked: figures.leaked,
        rss_growth_mb: mb(figures.maxRssStalled - figures.baselineRss),
        baseline_rss_mb: mb(figures.baselineRss),
        stalled_ms: STALL_MS,
        received_while_stalled: figures.bytesWhileStalled,
        generator_blocked_at_block: `${figures.blockedAtBlock}/${BLOCKS}`,
        resume_throughput_mib_s: figures.transferMs > 0 ? (figures.bytesReceived / 1048576 / (figures.transferMs / 1000)).toFixed(0) : 'n/a',
      }),
    );
  });

  it('holds the process back, stays within 32 MB, then delivers exactly the bytes printed', async () => {
    const baseline = broker.rss();
    figures.baselineRss = baseline;
    const c = new CountingClient(broker.wsUrl, { 'access-token': token, 'app-name': app, 'proc-name': 'web', 'instance-no': '1' }, ['sh', '-c', GENERATOR], true);
    await within(15_000, 'the first output', c.firstOutput);

    // Stalled: sample the broker's RSS, and watch the generator stop making progress.
    const stallStart = Date.now();
    const samples: number[] = [];
    let progressEarly = '';
    while (Date.now() - stallStart < STALL_MS) {
      samples.push(broker.rss());
      if (!progressEarly && Date.now() - stallStart >= 1_500) progressEarly = (await inContainer(containerId, 'cat /tmp/progress')).trim();
      await new Promise((r) => setTimeout(r, 100));
    }
    const progressLate = (await inContainer(containerId, 'cat /tmp/progress')).trim();
    figures.maxRssStalled = Math.max(...samples);
    figures.bytesWhileStalled = c.bytes;
    figures.blockedAtBlock = Number(progressLate);
    expect(c.exitCode, 'the command must not have finished while nobody read').toBeUndefined();
    expect(progressLate, 'the generator is blocked: no progress during the last 3.5 s of the stall').toBe(progressEarly);
    expect(Number(progressLate)).toBeLessThan(BLOCKS / 4);
    // Soft: the rest (the bytes after resuming) is worth knowing even when memory is over.
    expect.soft(figures.maxRssStalled - baseline, `broker RSS growth while stalled (baseline ${mb(baseline)} MB)`).toBeLessThan(RSS_LIMIT);

    // Reading again: everything arrives, in order, then EXIT 0 and a normal close.
    const resumed = Date.now();
    c.ws.resume();
    const closed = await within(120_000, 'the whole GiB', c.closed);
    figures.transferMs = Date.now() - resumed;
    figures.bytesReceived = c.bytes;
    figures.bytesPrinted = GIB;
    const hash = c.hash.digest('hex');
    figures.bytesLost = hash === expectedHash ? GIB - c.bytes : Math.max(GIB - c.bytes, 1);
    expect(c.bytes).toBe(GIB);
    expect(hash).toBe(expectedHash);
    expect(c.exitCode).toBe(0);
    expect(c.closeMessage?.code).toBe('');
    expect(closed.code).toBe(1000);

    // Nothing left running, and the broker still answers.
    const generator = (p: string) => p.includes('/tmp/block') || p.startsWith('sh -c i=0');
    await eventually(async () => !(await containerProcesses(containerId)).some(generator), 'the generator to be gone', 5_000).catch(() => undefined);
    figures.leaked = (await containerProcesses(containerId)).filter(generator).length;
    expect(figures.leaked).toBe(0);
    expect(await healthz(broker.url)).toBe(200);
    await timedEcho(broker.wsUrl, token, target);
    figures.survived = 1;
  }, 170_000);
});
