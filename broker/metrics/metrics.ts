import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SessionInfo, SessionObserver, SessionOutcome, SessionTap } from '../session/observer.js';
import type { EndReason } from '../session/types.js';

/** What the metrics read at scrape time from the rest of the broker. */
export interface MetricSources {
  /** Each host or cluster: whether its event stream (pod watch) is connected, and how many targets it indexes. */
  hosts(): Array<{ backend: string; name: string; up: boolean; containers: number }>;
  /** Bytes queued on the broker's WebSockets right now (not yet written to the network). */
  webSocketBuffered(): { total: number; max: number };
}

/** Counted in the hot path with plain additions; the counters catch up at scrape and at the end. */
interface LiveBytes {
  in: number;
  out: number;
  flushedIn: number;
  flushedOut: number;
}

/** Engine API latencies, Docker's and Kubernetes': 0.5 ms (a local socket) to 10 s (a slow ssh host). */
const API_LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Outcome label of a session that ran: `exited`, `client_gone`, or the failure's code. */
export function outcomeOf(reason: EndReason): string {
  if (reason.kind === 'exited') return 'exited';
  if (reason.kind === 'client-gone') return 'client_gone';
  return codeLabel(reason.error.code);
}

const codeLabel = (code: string) => code.replace(/^ENTRY_/, '').toLowerCase();

/** Refusals that are about who the caller is or what they may do (the rest are counted as refusals only). */
const POLICY_CODES = new Set(['ENTRY_FORBIDDEN', 'ENTRY_APP_DENIED', 'ENTRY_NOT_ADMIN']);

/**
 * The broker's Prometheus metrics, in a registry of its own. A SessionObserver (sessions, bytes,
 * durations), plus explicit hooks for authentication failures and Docker API calls, plus gauges
 * sampled at scrape time (hosts up, WebSocket buffers). Every name is in the README.
 */
export class BrokerMetrics implements SessionObserver {
  readonly registry = new Registry();
  private sources: MetricSources | undefined;
  private readonly live = new Set<LiveBytes>();
  private readonly active: Gauge;
  private readonly sessions: Counter<'outcome'>;
  private readonly duration: Histogram;
  private readonly bytes: Counter<'direction'>;
  private readonly refusals: Counter<'code'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly dockerLatency: Histogram<'host' | 'call'>;
  private readonly dockerErrors: Counter<'host' | 'call'>;
  private readonly faults: Counter<'where'>;
  private readonly kubeLatency: Histogram<'cluster' | 'call'>;
  private readonly kubeErrors: Counter<'cluster' | 'call'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const self = this;
    this.active = new Gauge({ name: 'entry_sessions_active', help: 'Sessions whose process runs now, on this broker.', registers });
    this.sessions = new Counter({
      name: 'entry_sessions_total',
      help: 'Sessions that ran, by how they ended: exited, client_gone, or the error code (container_gone, idle_timeout, killed, draining, …).',
      labelNames: ['outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'entry_session_duration_seconds',
      help: 'How long sessions lasted, from the process start to the end.',
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
      registers,
    });
    this.bytes = new Counter({
      name: 'entry_session_bytes_total',
      help: 'Payload bytes relayed: direction="in" from clients to processes (stdin), "out" from processes to clients (stdout and stderr).',
      labelNames: ['direction'],
      registers,
      collect() {
        self.flushBytes();
      },
    });
    // Both series exist from the start, so rates work from the first scrape.
    this.bytes.inc({ direction: 'in' }, 0);
    this.bytes.inc({ direction: 'out' }, 0);
    this.refusals = new Counter({
      name: 'entry_session_refusals_total',
      help: 'Upgrades and sessions refused before their process ran, by error code (not_found, forbidden, bad_token, docker_unavailable, …).',
      labelNames: ['code'],
      registers,
    });
    this.faults = new Counter({
      name: 'entry_internal_errors_total',
      help: 'Unexpected errors caught at a boundary (answered 500 or closed with ENTRY_INTERNAL), by where: http, upgrade, socket, metrics, static, process.',
      labelNames: ['where'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'entry_auth_failures_total',
      help: 'Failed authentications and authorizations (sessions and API calls), by reason: no_token, bad_token, token_expired, token_revoked, rate_limited, bad_ticket, forbidden, app_denied, not_admin.',
      labelNames: ['reason'],
      registers,
    });
    this.dockerLatency = new Histogram({
      name: 'entry_docker_api_duration_seconds',
      help: 'Docker Engine API call latency, by host and call (exec_create, exec_start, exec_inspect, container_list, container_inspect, ping, events, …).',
      labelNames: ['host', 'call'],
      buckets: API_LATENCY_BUCKETS,
      registers,
    });
    this.dockerErrors = new Counter({
      name: 'entry_docker_api_errors_total',
      help: 'Docker Engine API calls that failed (error status or no answer), by host and call.',
      labelNames: ['host', 'call'],
      registers,
    });
    // Per host or cluster, sampled at scrape time from the backend it belongs to.
    const hostGauge = (name: string, help: string, backend: string, label: 'host' | 'cluster', value: (h: { up: boolean; containers: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          for (const h of self.sources?.hosts() ?? []) if (h.backend === backend) this.set({ [label]: h.name }, value(h));
        },
      });
    hostGauge('entry_docker_host_up', '1 while the broker is connected to the Docker host (its event stream is open and its index in sync), else 0.', 'docker', 'host', (h) => (h.up ? 1 : 0));
    hostGauge('entry_docker_indexed_containers', "Labelled containers in the broker's index of each Docker host.", 'docker', 'host', (h) => h.containers);
    hostGauge('entry_kubernetes_cluster_up', "1 while the broker's pod watch on the cluster is connected and in sync, else 0.", 'kubernetes', 'cluster', (h) => (h.up ? 1 : 0));
    hostGauge('entry_kubernetes_indexed_pods', "Enterable pods in the broker's index of each cluster.", 'kubernetes', 'cluster', (h) => h.containers);
    this.kubeLatency = new Histogram({
      name: 'entry_kubernetes_api_duration_seconds',
      help: 'Kubernetes API call latency, by cluster and call (pod_list, pod_watch, pod_get, exec, logs, …).',
      labelNames: ['cluster', 'call'],
      buckets: API_LATENCY_BUCKETS,
      registers,
    });
    this.kubeErrors = new Counter({
      name: 'entry_kubernetes_api_errors_total',
      help: 'Kubernetes API calls that failed (error status or no answer), by cluster and call.',
      labelNames: ['cluster', 'call'],
      registers,
    });
    new Gauge({
      name: 'entry_websocket_buffered_bytes',
      help: 'Bytes queued on all of this broker\'s WebSockets and not yet sent, sampled at scrape time.',
      registers,
      collect() {
        this.set(self.sources?.webSocketBuffered().total ?? 0);
      },
    });
    new Gauge({
      name: 'entry_websocket_buffered_bytes_max',
      help: 'The largest send queue of a single WebSocket, sampled at scrape time.',
      registers,
      collect() {
        this.set(self.sources?.webSocketBuffered().max ?? 0);
      },
    });
  }

  setSources(sources: MetricSources): void {
    this.sources = sources;
  }

  started(_info: SessionInfo): SessionTap {
    this.active.inc();
    const acc: LiveBytes = { in: 0, out: 0, flushedIn: 0, flushedOut: 0 };
    this.live.add(acc);
    return {
      input: (d) => {
        acc.in += d.byteLength;
      },
      output: (_s, d) => {
        acc.out += d.byteLength;
      },
      ended: (o: SessionOutcome) => {
        this.flush(acc);
        this.live.delete(acc);
        this.active.dec();
        this.sessions.inc({ outcome: outcomeOf(o.reason) });
        this.duration.observe(o.durationMs / 1000);
      },
    };
  }

  refused(info: { code: string }): void {
    this.refusals.inc({ code: codeLabel(info.code) });
    if (POLICY_CODES.has(info.code)) this.authFailures.inc({ reason: codeLabel(info.code) });
  }

  /** An API call refused by the policy (not the user's app, a denied app, not an admin). */
  apiRefused(code: string): void {
    if (POLICY_CODES.has(code)) this.authFailures.inc({ reason: codeLabel(code) });
  }

  /** An unexpected error caught at a boundary. */
  fault(where: string): void {
    this.faults.inc({ where });
  }

  /** A token that did not authenticate (from the auth guard), or a ticket that did not redeem. */
  authFailure(reason: string): void {
    this.authFailures.inc({ reason: codeLabel(reason) });
  }

  dockerCall(host: string, call: string, seconds: number, failed: boolean): void {
    this.dockerLatency.observe({ host, call }, seconds);
    if (failed) this.dockerErrors.inc({ host, call });
  }

  kubeCall(cluster: string, call: string, seconds: number, failed: boolean): void {
    this.kubeLatency.observe({ cluster, call }, seconds);
    if (failed) this.kubeErrors.inc({ cluster, call });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private flushBytes(): void {
    for (const acc of this.live) this.flush(acc);
  }

  private flush(acc: LiveBytes): void {
    if (acc.in > acc.flushedIn) this.bytes.inc({ direction: 'in' }, acc.in - acc.flushedIn);
    if (acc.out > acc.flushedOut) this.bytes.inc({ direction: 'out' }, acc.out - acc.flushedOut);
    acc.flushedIn = acc.in;
    acc.flushedOut = acc.out;
  }
}
