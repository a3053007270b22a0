import type Docker from 'dockerode';

/** Observes one Docker Engine API call: which host, which call, how long, whether it failed. */
export type DockerCallObserver = (host: string, call: string, seconds: number, failed: boolean) => void;

const INSTRUMENTED = new WeakSet<object>();

/** Engine API paths by call name; anything else counts as `other` (bounded label values). */
const CALLS: Array<[string, RegExp, string]> = [
  ['GET', /^\/_ping$/, 'ping'],
  ['GET', /^\/events$/, 'events'],
  ['GET', /^\/containers\/json$/, 'container_list'],
  ['GET', /^\/containers\/[^/]+\/json$/, 'container_inspect'],
  ['GET', /^\/containers\/[^/]+\/top$/, 'container_top'],
  ['POST', /^\/containers\/[^/]+\/exec$/, 'exec_create'],
  ['POST', /^\/exec\/[^/]+\/start$/, 'exec_start'],
  ['GET', /^\/exec\/[^/]+\/json$/, 'exec_inspect'],
  ['POST', /^\/exec\/[^/]+\/resize$/, 'exec_resize'],
  ['POST', /^\/containers\/[^/]+\/attach$/, 'container_attach'],
  ['GET', /^\/containers\/[^/]+\/logs$/, 'container_logs'],
];

export function callName(method: string, path: string): string {
  const p = path.split('?')[0]!.replace(/^\/v\d+\.\d+/, '');
  for (const [m, re, name] of CALLS) if (m === method && re.test(p)) return name;
  return 'other';
}

/**
 * Times every Engine API call a Docker client makes, by wrapping its modem's `dial`: exec
 * create/start/inspect, listings, pings, the event stream (until its headers). For a hijacked
 * exec start the time is until the stream is handed over. A client shared by several hosts is
 * timed once, under the first host's name.
 */
export function instrumentDocker(docker: Docker, host: string, observe: DockerCallObserver): void {
  const modem = docker.modem as unknown as { dial(options: { method: string; path: string }, cb: (err: unknown, data: unknown) => void): unknown };
  if (INSTRUMENTED.has(modem)) return;
  INSTRUMENTED.add(modem);
  const dial = modem.dial.bind(modem);
  modem.dial = (options, cb) => {
    const call = callName(options.method, options.path);
    const t0 = performance.now();
    return dial(options, (err, data) => {
      observe(host, call, (performance.now() - t0) / 1000, Boolean(err));
      cb(err, data);
    });
  };
}
