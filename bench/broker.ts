import { Agent, get } from 'node:http';
import { BROKER_ENVIRONMENT, BROKER_NODE_OPTIONS } from '../broker/runtime-options.js';
import { BrokerProcess } from '../test/helpers/broker-process.js';

/** The broker child every figure measures: the one the tests start too. */
export type BrokerChild = BrokerProcess;

/**
 * The broker runs as deployed (broker/runtime-options.ts). To compare tunings,
 * BENCH_BROKER_NODE_ARGS replaces the node options (e.g. --max-semi-space-size=2) and
 * BENCH_BROKER_ENV adds `NAME=value` pairs, separated by spaces, to the broker's environment
 * only (e.g. MALLOC_ARENA_MAX=4), so the clients and relays of the run are not tuned with it.
 */
const EXTRA_NODE_ARGS = process.env['BENCH_BROKER_NODE_ARGS']?.split(/\s+/).filter(Boolean) ?? BROKER_NODE_OPTIONS;
const BROKER_ENV = { ...BROKER_ENVIRONMENT, ...parseEnvPairs(process.env['BENCH_BROKER_ENV'] ?? '') };

/** `A=1 B=x:y` as { A: '1', B: 'x:y' }; a word without `=` is an error, not a silent no-op. */
function parseEnvPairs(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new Error(`BENCH_BROKER_ENV: "${word}" is not NAME=value`);
    env[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return env;
}

/**
 * Session recordings are on by default in the broker, so they are on here too, written to the
 * broker's own temporary directory (same disk as /var/lib/entry) and deleted when it stops.
 * `--no-recording` turns them off for a comparison.
 */
let recording = true;
export function setRecording(on: boolean): void {
  recording = on;
}

export interface BrokerOptions {
  /** Extra broker flags. */
  flags?: string[];
  /** Extra node options placed before the script (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

/** The built broker as a child process with a fresh Ed25519 key, as in production; tokens for user "bench". */
export function startBroker(options: BrokerOptions = {}): Promise<BrokerChild> {
  return BrokerProcess.start({
    flags: options.flags ?? [],
    nodeArgs: [...EXTRA_NODE_ARGS, ...(options.nodeArgs ?? [])],
    env: BROKER_ENV,
    recordings: recording,
    // The last lines only, for failure reports: a long run logs a line per session.
    keepLogs: 200,
    user: 'bench',
  });
}

/**
 * Polls the broker's /healthz every `intervalMs`: the answer time is (almost all) the broker's
 * event-loop delay, i.e. how long anything else, a keystroke included, would wait.
 */
export class LoopProbe {
  readonly samples: number[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(url: string, intervalMs = 100) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const once = () =>
      new Promise<void>((resolve) => {
        const t0 = process.hrtime.bigint();
        const req = get(`${url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            this.samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
            resolve();
          });
        });
        req.on('error', () => resolve());
      });
    this.done = (async () => {
      while (!this.stopped) {
        await once();
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      agent.destroy();
    })();
  }

  async stop(): Promise<number[]> {
    this.stopped = true;
    await this.done;
    return this.samples;
  }
}
