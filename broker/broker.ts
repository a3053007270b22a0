import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditTrail } from './audit/audit-trail.js';
import { createDevIdentity, writeDevToken } from './auth/dev.js';
import { withTimeout } from './backend/with-timeout.js';
import { EntryError } from './errors.js';
import { AuthGuard } from './auth/guard.js';
import { authWarnings, loadVerificationKey, type VerificationKey } from './auth/keys.js';
import { AccessPolicy } from './auth/policy.js';
import { Tickets } from './auth/tickets.js';
import { TokenVerifier } from './auth/verifier.js';
import type { BrokerConfig } from './config/config.js';
import { ConfigError } from './config/config-error.js';
import type { Backends } from './backend/backends.js';
import { createBackends, type DockerOverrides } from './backends.js';
import { createFaultReporter, type FaultReporter } from './fault.js';
import type { ApiDeps } from './http/api.js';
import type { HealthDeps } from './http/health-routes.js';
import { listen } from './http/listener.js';
import { createRequestHandler } from './http/routes.js';
import { type LeftoverOutcome, Leftovers } from './ledger/leftovers.js';
import { FileLedger } from './ledger/file-ledger.js';
import type { LedgerEntry, LedgerHolder, SessionLedger } from './ledger/session-ledger.js';
import { HOLDER_PROBE_TIMEOUT_MS, holderAnswers } from './ledger/holder-probe.js';
import { aliveMarkMs, StoreLedger } from './ledger/store-ledger.js';
import { createLogger, type Logger } from './log.js';
import { boundedSink } from './log-sink.js';
import { PACKAGE_VERSION } from './package-version.js';
import { BrokerMetrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/server.js';
import { Recorder } from './recording/recorder.js';
import { runAttachSession } from './session/attach-session.js';
import { runExecSession } from './session/exec-session.js';
import type { SessionObserver } from './session/observer.js';
import { hasSessionIdShape } from '../proto/session-id.js';
import { SessionRegistry } from './session/registry.js';
import { SessionTable } from './session/session-table.js';
import { runWatchSession } from './session/watch-session.js';
import { MemoryStore } from './store/memory-store.js';
import { RedisStore } from './store/redis-store.js';
import type { Store } from './store/store.js';
import { storeCall } from './store/store-call.js';
import { TrustedProxies } from './transport/client-address.js';
import { Gateway } from './transport/gateway.js';
import { ListenerCertificates } from './transport/tls.js';
import { PeerCredentials } from './transport/peer-tls.js';
import { peerTlsFailure } from './transport/peer-tls-failure.js';

export interface BrokerOptions {
  log?: Logger;
  /** How leftover processes are found: `auto` prefers the host's /proc. */
  reapMode?: DockerOverrides['reapMode'];
  docker?: DockerOverrides['client'];
  /** Where the built console lives (default: dist/console at the package root). */
  consoleRoot?: string;
}

/** The package root, whether running from dist/ or from sources (tests). */
const PACKAGE_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/broker/') ? '../../' : '../', import.meta.url));
const DEFAULT_CONSOLE_ROOT = join(PACKAGE_ROOT, 'dist', 'console');

/**
 * How long an exit before the drain is done waits for its clients to be told (see abandon): a
 * client that reads has its CLOSE and answers it within round trips of milliseconds; one that
 * does not read would not have it after any wait, and the exit is not held for it.
 */
const ANNOUNCE_WAIT_MS = 1_000;

/** What became of a dead broker's session, in the audit trail's end of it. */
const LEFTOVER_REASONS: Record<LeftoverOutcome, string> = {
  ended: 'its processes were ended by this broker',
  'target-gone': 'its target is gone, and its processes with it',
  'left-running': 'its processes cannot be ended from inside its container, and run until it stops',
};

/** The assembled broker: HTTP server, WebSocket gateway, sessions, shared store. */
export class EntryBroker {
  readonly log: Logger;
  /** This process among the brokers sharing a store. */
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private server: Server | undefined;
  private gateway: Gateway | undefined;
  private store: Store | undefined;
  private readonly sessions: SessionTable;
  private recorder: Recorder | undefined;
  /** Followers of every session (audit, recordings, metrics), added before start. */
  readonly observers: SessionObserver[] = [];
  /** The dev token, in dev mode only. */
  devToken: string | undefined;
  /** Prometheus metrics, when --metrics-listen is set. */
  metrics: BrokerMetrics | undefined;
  /** Where the metrics are served (http://HOST:PORT/metrics). */
  metricsUrl: string | undefined;
  private backends: Backends | undefined;
  private certificates: ListenerCertificates | undefined;
  private metricsServer: MetricsServer | undefined;
  private audit: AuditTrail | undefined;
  private leftovers: Leftovers | undefined;

  /** Reports unexpected errors caught at a boundary: logged with their stack and counted. */
  readonly fault: FaultReporter;

  constructor(
    readonly config: BrokerConfig,
    private readonly options: BrokerOptions = {},
  ) {
    this.log = options.log ?? createLogger(config.logLevel, boundedSink(process.stderr, config.logBacklogBytes));
    this.sessions = new SessionTable(config.limits.maxSessions, this.log);
    this.fault = createFaultReporter(this.log, (where) => this.metrics?.fault(where));
  }

  get url(): string {
    const addr = this.server?.address() as AddressInfo | null;
    if (!addr) throw new Error('broker not listening');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `${this.config.tls ? 'https' : 'http'}://${host}:${addr.port}`;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  async start(): Promise<void> {
    const { config } = this;
    // What the files say is checked before anything is started or listened on: a key or a
    // recordings directory that cannot be used stops the broker before it touches an engine.
    let key: VerificationKey;
    // Dev mode's key is made before the listener opens too: from its first request on, the
    // broker has everything it needs to answer (the API and upgrades are ready once it listens).
    const dev = config.dev ? await createDevIdentity(config.auth) : undefined;
    if (dev) key = dev.key;
    else {
      key = loadVerificationKey(config.auth);
      for (const warning of authWarnings(config.auth)) this.log.warn(warning);
    }
    const recorder = config.audit.recordingsDir
      ? newRecorder({ dir: config.audit.recordingsDir, recordInput: config.audit.recordInput, maxBytes: config.audit.recordingMaxBytes, retentionDays: config.audit.retentionDays }, this.log)
      : undefined;
    const metrics = config.metricsListen ? new BrokerMetrics() : undefined;
    this.metrics = metrics;
    if (metrics) this.observers.push(metrics);
    const docker = { ...(this.options.reapMode ? { reapMode: this.options.reapMode } : {}), ...(this.options.docker ? { client: this.options.docker } : {}) };
    // Every backend's targets, kept current from the engines' own event streams.
    const backends = createBackends({ config, log: this.log, metrics, docker });
    this.backends = backends;
    await backends.start();
    const proxies = new TrustedProxies(config.trustedProxies);
    const certificates = config.tls ? new ListenerCertificates(config.tls, this.log) : undefined;
    this.certificates = certificates;
    // Read and checked at start, as the listener's files are: a file that cannot be used stops it.
    const peers = new PeerCredentials(config.peerTls, this.log);
    peers.check(Boolean(config.tls?.clientCa));
    const store = await this.openStore();
    const audit = new AuditTrail(store, this.log, { brokerId: this.id, maxEvents: config.audit.maxEvents, alertRules: config.audit.alertRules });
    this.audit = audit;
    // Sessions a dead broker left running are claimed before this one takes any, and ended meanwhile.
    const leftovers = await this.openLeftovers(store, backends, audit, peers);
    this.leftovers = leftovers;
    let api: ApiDeps | undefined;
    let gateway: Gateway | undefined;
    const health: HealthDeps = {
      brokerId: this.id,
      ready: async () => {
        // A host is up while its event stream (a cluster: its pod watch) is connected.
        return { backends: backends.kinds(), store: await store.healthy(), hosts: backends.status() };
      },
      draining: () => this.sessions.isDraining,
    };
    const handler = createRequestHandler({
      ...health,
      api: () => api,
      consoleRoot: this.options.consoleRoot ?? DEFAULT_CONSOLE_ROOT,
      oidc: config.oidc,
      allowedOrigins: config.allowedOrigins,
    });
    // Nothing is awaited from here until the API and the gateway are set, below: no request
    // is read before they exist.
    this.server = await listeningOn('--listen', config.listen, () =>
      listen(
        { ...config.listen, handshakeTimeoutMs: config.limits.handshakeTimeoutMs, bodyTimeoutMs: config.limits.bodyTimeoutMs, certificates, proxies, log: this.log, fault: this.fault },
        handler,
        (req, socket, head) => (gateway ? gateway.handleUpgrade(req, socket, head) : socket.destroy()),
      ),
    );
    if (dev) {
      writeDevToken(config.devTokenFile, dev.token);
      this.devToken = dev.token;
      this.log.info('dev mode: a token for the local user', { user: dev.user, broker: this.url, file: config.devTokenFile, login: `enter login --broker ${this.url} < ${config.devTokenFile}` });
    }
    const registry = new SessionRegistry(store, { brokerId: this.id, brokerUrl: config.advertiseUrl ?? advertisedUrl(this.url), ttlMs: config.limits.sessionTtlMs, maxUserSessions: config.limits.maxUserSessions }, this.log);
    const sessionDeps = {
      observers: this.observers,
      store,
      watchBanner: config.audit.watchBanner,
      registry,
      log: this.log,
      pingIntervalMs: config.limits.pingIntervalMs,
      startTimeoutMs: config.limits.startTimeoutMs,
      terminateGraceMs: config.limits.killGraceMs,
      openTimeoutMs: config.limits.openTimeoutMs,
      idleTimeoutMs: config.limits.idleTimeoutMs,
      maxSessionMs: config.limits.maxSessionMs,
      resumeGraceMs: config.limits.resumeGraceMs,
      leftovers,
      sessions: this.sessions,
    };
    const track = this.sessions.track;
    this.observers.push(audit);
    if (recorder) this.observers.push(recorder);
    this.recorder = recorder;
    const guard = new AuthGuard(
      new TokenVerifier(key, config.auth),
      store,
      config.limits,
      (err, source, claimed, via, repeat) => {
        if (!repeat) audit.authFailure(err, source, claimed);
        const code = (err as { code?: string }).code ?? 'ENTRY_INTERNAL';
        metrics?.authFailure(via === 'ticket' && code === 'ENTRY_BAD_TOKEN' ? 'bad_ticket' : code);
      },
      (err, counter) => this.log.warn('auth failure not counted: shared store failed', { counter, error: err as Error }),
    );
    const policy = new AccessPolicy(config.auth.denyApps);
    const tickets = new Tickets(store);
    api = { guard, policy, tickets, backends, store, audit, recorder, currentSessions: (records) => registry.current(records), bodyTimeoutMs: config.limits.bodyTimeoutMs, clockToleranceSec: config.auth.clockToleranceSec, onForbidden: (code) => metrics?.apiRefused(code) };
    // Revocations missed while the link to the store was down are found within a heartbeat's time.
    this.sessions.listen(store, this.id, audit, Math.max(100, Math.floor(config.limits.sessionTtlMs / 3)));
    gateway = new Gateway({
      config,
      guard,
      policy,
      tickets,
      resolver: backends,
      onRefused: (info) => metrics?.refused(info),
      fault: this.fault,
      log: this.log,
      admissible: (resume) => this.sessions.admissible(resume),
      brokerId: this.id,
      trustsPeer: (address) => proxies.trusts(address),
      peerTls: () => peers.current(),
      peerName: config.peerTls.name,
      peerTlsFailure: (err) => peerTlsFailure(err, config.peerTls, { lacksClientAuth: peers.lacksClientAuth, mtls: peers.mtls }),
      locateSession: async (id) => {
        // A malformed id is refused where it is admitted (ENTRY_BAD_REQUEST), never looked up.
        if (!hasSessionIdShape(id) || this.sessions.get(id)) return undefined;
        const record = await storeCall(() => store.getSession(id));
        return record && record.broker !== this.id && record.brokerUrl ? record.brokerUrl : undefined;
      },
      onWatch: (w) => void runWatchSession(w, { store, audit, log: this.log, sessionTtlMs: config.limits.sessionTtlMs }).catch((err: unknown) => this.fault('socket', err, { watch: w.sessionId })),
      onAdmitted: (route, upgrade) => {
        const run = route === 'enter' ? runExecSession(upgrade, sessionDeps, track) : runAttachSession(upgrade, { log: this.log, observers: this.observers, registry, pingIntervalMs: config.limits.pingIntervalMs, idleTimeoutMs: config.limits.idleTimeoutMs, maxSessionMs: config.limits.maxSessionMs }, track);
        run.catch((err: unknown) => this.fault('socket', err, { session: upgrade.sessionId, route }));
      },
    });
    this.gateway = gateway;
    if (metrics && config.metricsListen) {
      metrics.setSources({
        hosts: () => backends.hostGauges(),
        webSocketBuffered: () => gateway.bufferedBytes(),
      });
      const server = new MetricsServer(metrics, this.log, this.fault, health);
      this.metricsServer = server;
      const where = config.metricsListen;
      this.metricsUrl = await listeningOn('--metrics-listen', where, () => server.listen(where.host, where.port));
    }
    this.log.info('listening', { url: this.url, broker: this.id, store: store.kind, version: PACKAGE_VERSION });
  }

  /**
   * The session ledger: shared in Redis when brokers share one (any of them ends what a dead one
   * left), else in --state-dir (the broker started again ends it); none with `--state-dir none`.
   */
  private async openLeftovers(store: Store, backends: Backends, audit: AuditTrail, peers: PeerCredentials): Promise<Leftovers | undefined> {
    const { config } = this;
    let ledger: SessionLedger | undefined;
    let sweepMs: number | undefined;
    if (store.kind === 'redis') {
      // A holder is asked whether it is alive as a resume is handed to it: over the same TLS.
      const answers = (holder: LedgerHolder) => holderAnswers(holder, HOLDER_PROBE_TIMEOUT_MS, { secureContext: peers.current(), peerName: config.peerTls.name });
      ledger = new StoreLedger(store, this.id, aliveMarkMs(config.limits.sessionTtlMs), this.log, backends.places(), answers);
      sweepMs = config.limits.sessionTtlMs;
    } else if (config.stateDir) {
      ledger = await FileLedger.open(config.stateDir, this.log, backends.places());
    }
    if (!ledger) return undefined;
    // The session's end, which its own broker never recorded.
    const ended = (e: LedgerEntry, how: LeftoverOutcome) => {
      const started = Date.parse(e.startedAt);
      audit.record({
        type: 'session.end',
        sessionId: e.session,
        user: e.user,
        source: e.source,
        app: e.app,
        proc: e.proc,
        instance: e.instance,
        container: e.place.id,
        host: e.place.host,
        how: 'broker-died',
        reason: `its broker stopped without ending it: ${LEFTOVER_REASONS[how]}`,
        ...(Number.isFinite(started) ? { durationMs: Date.now() - started } : {}),
      });
    };
    const leftovers = new Leftovers(ledger, backends, config.limits.killGraceMs, this.log, sweepMs, ended);
    await leftovers.start();
    return leftovers;
  }

  /** Redis when configured (a broker starts even while Redis is down, and reports not ready). */
  private async openStore(): Promise<Store> {
    const { redis } = this.config;
    if (!redis.url) return (this.store = new MemoryStore());
    // ioredis is loaded only here: a broker without Redis does not carry it (0.8 MB of heap).
    const { createRedisClient } = await import('./store/redis-connection.js');
    const client = createRedisClient({ url: redis.url, sentinels: redis.sentinels, sentinelName: redis.sentinelName, cluster: redis.cluster });
    client.on('error', (err: Error) => this.log.debug('redis', { error: err }));
    client.on('ready', () => this.log.info('redis connected'));
    client.on('end', () => this.log.warn('redis connection closed'));
    const store = new RedisStore(client);
    this.store = store;
    await store.connect().catch((err: unknown) => this.log.warn('redis unreachable at start; retrying in the background', { error: err as Error }));
    return store;
  }

  /** Stops accepting, ends every session with a CLOSE reason, closes the server. */
  async stop(): Promise<void> {
    // Admissions under way are answered too (ENTRY_DRAINING), not cut by the exit.
    await Promise.all([this.sessions.drain(), this.gateway?.drain()]);
    this.gateway?.close();
    await new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.recorder?.close();
    await this.leftovers?.stop();
    this.backends?.stop();
    this.certificates?.close();
    await this.metricsServer?.close();
    // The sessions' last events (their ends) are stored before the store is let go.
    await this.audit?.flush();
    await this.store?.close();
  }

  /**
   * The broker exits before its drain is done (--drain-timeout, a second signal): every client
   * still connected is told now, with at most ANNOUNCE_WAIT_MS for it to go out. Their processes
   * are the session ledger's, for the next broker to end.
   */
  async abandon(): Promise<void> {
    const told = this.sessions.announceEnd(new EntryError('ENTRY_DRAINING', "the broker exits before this session's processes are ended: the next broker ends them"));
    await withTimeout(told, ANNOUNCE_WAIT_MS, 'telling the clients of the exit').catch((err: unknown) => this.log.info('not every client confirmed the end before the exit', { error: err as Error }));
  }

  /** Reads the TLS certificate and key again (SIGHUP); new connections get them. */
  reloadTls(): boolean {
    // Said either way: an operator who sent SIGHUP sees it was heard.
    if (!this.certificates) this.log.info('SIGHUP: no TLS certificate to reload');
    return this.certificates?.reload('SIGHUP') ?? false;
  }
}

/** Listening where a setting says: an address another process holds is that setting's problem, named. */
async function listeningOn<T>(setting: string, where: { host: string; port: number }, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why: Record<string, string> = {
      EADDRINUSE: 'in use by another process',
      EADDRNOTAVAIL: 'no interface of this machine has that address (EADDRNOTAVAIL)',
      EACCES: 'not permitted (EACCES: a port under 1024 needs CAP_NET_BIND_SERVICE)',
      ENOTFOUND: 'no such host (ENOTFOUND)',
      EAI_AGAIN: 'the host name could not be resolved just now (EAI_AGAIN)',
    };
    if (why[code]) throw new ConfigError(setting, `cannot listen on ${where.host}:${where.port}: ${why[code]}`);
    throw err;
  }
}

/** The recorder, its folder made first: a path it cannot make is a bad --recordings-dir. */
function newRecorder(options: ConstructorParameters<typeof Recorder>[0], log: Logger): Recorder {
  try {
    return new Recorder(options, log);
  } catch (err) {
    throw new ConfigError('--recordings-dir', `cannot make ${options.dir}: ${(err as Error).message}`);
  }
}

/** The listener's URL as other brokers can use it: a wildcard address becomes the host name. */
function advertisedUrl(listening: string): string {
  const url = new URL(listening);
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = hostname();
  return url.origin;
}
