import type { Target } from '../backend/backend.js';
import { ListingGuard } from '../backend/listing-guard.js';
import { RetrySchedule } from '../backend/retry-schedule.js';
import { withTimeout } from '../backend/with-timeout.js';
import type { Logger } from '../log.js';
import { failureText, type KubeClient, KubeHttpError } from './kube-client.js';
import { podMatches, type PodRecord, podRecord, podTarget } from './pod.js';

export interface PodIndexTiming {
  /** How often a connected apiserver is asked for /version: a silent network is noticed within this plus the timeout. */
  pingIntervalMs: number;
  /** Longest wait for a listing page or a ping before the cluster counts as down. */
  requestTimeoutMs: number;
  /** Reconnect backoff: first wait, doubled per failure up to the maximum, with ±20 % jitter. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** The apiserver ends each watch after about this long (timeoutSeconds); it is then resumed from the last resourceVersion. */
  watchSeconds: number;
  /**
   * A watch still open this long past its timeoutSeconds is taken for a dead link (an apiserver
   * gone without a FIN, behind a load balancer: the pings reach another one) and relisted.
   */
  watchOverdueMs: number;
}

export const DEFAULT_POD_INDEX_TIMING: PodIndexTiming = { pingIntervalMs: 5_000, requestTimeoutMs: 5_000, backoffInitialMs: 200, backoffMaxMs: 5_000, watchSeconds: 300, watchOverdueMs: 30_000 };

const LIST_PAGE = 500;

type ScopeState = 'connecting' | 'up' | 'down';

const appProcKey = (app: string, proc: string) => `${app}\0${proc}`;

/**
 * The pods of one namespace (or of all of them), kept current by list + watch: a full listing
 * (paged), then a watch from the listing's resourceVersion. A watch the apiserver ends in order
 * (its timeout) resumes from the last resourceVersion seen; a failed one (connection lost, an
 * error event) marks the scope down at once and reconnects with backoff, relisting in full. A
 * `410 Gone` relists at once, the scope serving what it holds meanwhile (see `fail`).
 */
class PodScope {
  readonly pods = new Map<string, PodRecord>();
  private readonly byAppProc = new Map<string, Set<string>>();
  private _state: ScopeState = 'connecting';
  private reason = 'connecting';
  private resourceVersion = '';
  private generation = 0;
  private watchAbort: AbortController | undefined;
  private listAbort: AbortController | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  /** Fires when the watch under way is overdue (see PodIndexTiming.watchOverdueMs). */
  private watchTimer: NodeJS.Timeout | undefined;
  private readonly retries: RetrySchedule;
  /** Full listings done (the first one included). */
  resyncs = 0;

  constructor(
    private readonly client: KubeClient,
    /** '' = every namespace. */
    public namespace: string,
    private readonly log: Logger,
    private readonly timing: PodIndexTiming,
    private readonly onChange: (up: boolean) => void,
    /** Cluster-wide listing refused: where to look instead ('' = nowhere). */
    private readonly fallbackNamespace: string,
    /** Told of every watch event, for the cluster's direct listings. */
    private readonly guard: ListingGuard,
  ) {
    this.retries = new RetrySchedule(() => this.connect(), timing);
  }

  get state(): ScopeState {
    return this._state;
  }

  get downReason(): string {
    return this.reason;
  }

  get where(): string {
    return this.namespace ? `namespace ${this.namespace}` : 'all namespaces';
  }

  start(): Promise<void> {
    return this.retries.start();
  }

  stop(): void {
    this.retries.stop();
    this.disconnect();
  }

  lookup(target: Target): PodRecord[] {
    const uids = this.byAppProc.get(appProcKey(target.app, target.proc));
    if (!uids) return [];
    return [...uids].map((u) => this.pods.get(u)!).filter((p) => p && podMatches(p, target));
  }

  /** A pod a direct read found: the apiserver's word is fresher than the index's (see PodIndex.confirm). */
  upsert(p: PodRecord): void {
    if (this._state !== 'up' || !this.covers(p.namespace)) return;
    const known = this.pods.get(p.uid);
    // Never go back in time: a watch event may have brought a newer version meanwhile.
    if (known && Number(known.resourceVersion) > Number(p.resourceVersion)) return;
    this.put(p);
  }

  covers(namespace: string): boolean {
    return this.namespace === '' || this.namespace === namespace;
  }

  private path(): string {
    return this.namespace ? `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods` : '/api/v1/pods';
  }

  private async connect(): Promise<void> {
    if (this.retries.stopped) return;
    const generation = ++this.generation;
    try {
      await this.list(generation);
      if (generation !== this.generation) return;
      await this.watch(generation);
    } catch (err) {
      if (generation !== this.generation || this.retries.stopped) return;
      if (err instanceof KubeHttpError && err.statusCode === 403 && this.namespace === '' && this.fallbackNamespace) {
        // May not list every namespace: serve the identity's own, as kubectl would.
        this.log.warn('kubernetes: may not list pods in all namespaces; serving one', { cluster: this.client.cluster, namespace: this.fallbackNamespace, reason: err.message });
        this.namespace = this.fallbackNamespace;
        return this.connect();
      }
      const status = (err as { statusCode?: number }).statusCode;
      if (err instanceof KubeHttpError && status === 403) this.fail(`may not list pods in ${this.where}: ${err.message}`);
      // client-node's watch reports a refusal as an Error with the status code.
      else if (status === 403) this.fail(`may not watch pods in ${this.where}`);
      else this.fail(failureText(err));
    }
  }

  private async list(generation: number): Promise<void> {
    const seen = new Map<string, PodRecord>();
    let token = '';
    let rv = '';
    do {
      const abort = new AbortController();
      this.listAbort = abort;
      const q = new URLSearchParams({ limit: String(LIST_PAGE) });
      if (token) q.set('continue', token);
      const page = await this.client.getJson<{ metadata?: { resourceVersion?: string; continue?: string }; items?: unknown[] }>(`${this.path()}?${q}`, 'pod_list', {
        timeoutMs: this.timing.requestTimeoutMs,
        signal: abort.signal,
      });
      if (generation !== this.generation) return;
      for (const item of page.items ?? []) {
        const p = podRecord(item);
        if (p) seen.set(p.uid, p);
      }
      rv = page.metadata?.resourceVersion ?? rv;
      token = page.metadata?.continue ?? '';
    } while (token);
    for (const uid of [...this.pods.keys()]) if (!seen.has(uid)) this.remove(uid);
    for (const p of seen.values()) this.put(p);
    this.resourceVersion = rv;
    this.resyncs++;
  }

  /** Opens the watch; resolves once the apiserver has accepted it. */
  private async watch(generation: number): Promise<void> {
    // Until the watch is accepted its failure is thrown to the caller; after that, `done` reports it.
    let established = false;
    let ended = false;
    let failure: unknown;
    const timeoutSeconds = Math.max(1, Math.round(this.timing.watchSeconds * (0.9 + Math.random() * 0.2)));
    const opening = this.client.timed(
      'pod_watch',
      this.client.watcher().watch(
        this.path(),
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        (type: string, obj: any) => {
          if (generation !== this.generation) return;
          this.event(type, obj, generation);
        },
        (err: unknown) => {
          ended = true;
          failure = err;
          if (!established || generation !== this.generation || this.retries.stopped) return;
          clearTimeout(this.watchTimer);
          if (err) this.fail(`watch: ${failureText(err)}`);
          // Ended in order (timeoutSeconds, or the apiserver going away): resume where it was.
          else void this.rewatch(generation);
        },
      ),
    );
    // The watch's open has no bound of its own: an apiserver that took the request and went
    // silent would hold it, and this scope, for good. One answered too late is closed.
    const controller = await withTimeout(opening, this.timing.requestTimeoutMs, 'watch').catch((err: unknown) => {
      void opening.then(
        (c) => c.abort(),
        () => undefined,
      );
      throw err;
    });
    if (generation !== this.generation) {
      controller.abort();
      return;
    }
    this.watchAbort = controller;
    if (ended) {
      // Even one ended in order at once is a failure: retrying at once could spin.
      throw failure ?? new Error('the watch ended as soon as it opened');
    }
    established = true;
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => {
      if (generation === this.generation) this.fail(`watch: not ended by the apiserver ${this.timing.watchOverdueMs / 1000} s after its ${timeoutSeconds} s: the link is taken for dead`);
    }, timeoutSeconds * 1000 + this.timing.watchOverdueMs);
    this.watchTimer.unref();
    const wasUp = this._state === 'up';
    this._state = 'up';
    this.reason = '';
    if (this.retries.failures > 0) this.log.info('kubernetes cluster reachable again', { cluster: this.client.cluster, scope: this.where, pods: this.pods.size });
    if (!wasUp) this.onChange(true);
    this.retries.succeeded();
    this.schedulePing(generation);
  }

  private async rewatch(generation: number): Promise<void> {
    try {
      await this.watch(generation);
    } catch (err) {
      if (generation === this.generation && !this.retries.stopped) this.fail(`watch: ${failureText(err)}`);
    }
  }

  private event(type: string, obj: any, generation: number): void {
    const rv: string | undefined = obj?.metadata?.resourceVersion;
    const uid: string | undefined = obj?.metadata?.uid;
    if (uid) this.guard.heard(uid);
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const p = podRecord(obj);
        if (p) this.put(p);
        break;
      }
      case 'DELETED': {
        if (uid) this.remove(uid);
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR': {
        // Typically 410 Gone: the resourceVersion is too old to resume from. Relist.
        const code = obj?.code ?? '';
        this.fail(`watch error ${code}: ${obj?.message ?? obj?.reason ?? 'unknown'}`, code === 410);
        return;
      }
      default:
        return;
    }
    if (rv && generation === this.generation) this.resourceVersion = rv;
  }

  private put(p: PodRecord): void {
    const old = this.pods.get(p.uid);
    if (old) this.unkey(old);
    this.pods.set(p.uid, p);
    const t = podTarget(p);
    if (!t) return;
    const key = appProcKey(t.app, t.proc);
    let set = this.byAppProc.get(key);
    if (!set) this.byAppProc.set(key, (set = new Set()));
    set.add(p.uid);
  }

  private remove(uid: string): void {
    const old = this.pods.get(uid);
    if (!old) return;
    this.unkey(old);
    this.pods.delete(uid);
  }

  private unkey(p: PodRecord): void {
    const t = podTarget(p);
    if (!t) return;
    const key = appProcKey(t.app, t.proc);
    const set = this.byAppProc.get(key);
    set?.delete(p.uid);
    if (set?.size === 0) this.byAppProc.delete(key);
  }

  private schedulePing(generation: number): void {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      void this.client.getJson('/version', 'version', { timeoutMs: this.timing.requestTimeoutMs }).then(
        () => {
          if (generation === this.generation && this._state === 'up') this.schedulePing(generation);
        },
        (err: unknown) => {
          // Any HTTP answer means it is there; only silence or a refused connection is down.
          if (err instanceof KubeHttpError) {
            if (generation === this.generation && this._state === 'up') this.schedulePing(generation);
            return;
          }
          if (generation === this.generation) this.fail(`ping failed: ${failureText(err)}`);
        },
      );
    }, this.timing.pingIntervalMs);
    this.pingTimer.unref();
  }

  private disconnect(): void {
    this.generation++;
    clearTimeout(this.pingTimer);
    clearTimeout(this.watchTimer);
    this.watchAbort?.abort();
    this.watchAbort = undefined;
    this.listAbort?.abort();
    this.listAbort = undefined;
  }

  /**
   * Down at once, and again after a growing wait. A 410 says only that the watch's version is
   * too old to resume from: the scope stays up on what it holds while it lists again at once
   * (refusing every session meanwhile would turn a routine relist into an outage), and goes down
   * only if that listing fails.
   */
  private fail(why: string, immediate = false): void {
    const wasUp = this._state === 'up';
    this.disconnect();
    if (immediate && wasUp) {
      this.retries.failed(true);
      return;
    }
    this._state = 'down';
    this.reason = why;
    if (wasUp) {
      this.onChange(false);
      this.log.warn('kubernetes cluster down', { cluster: this.client.cluster, scope: this.where, reason: why });
    } else if (this.retries.failures === 0) {
      this.log.warn('kubernetes cluster unreachable', { cluster: this.client.cluster, scope: this.where, reason: why });
    }
    this.retries.failed(immediate);
  }
}

/** Every pod of a cluster the broker serves: one watched scope per namespace, or one for all. */
export class PodIndex {
  private readonly scopes: PodScope[];
  private lastUp = false;
  private readonly guard = new ListingGuard();

  constructor(
    private readonly client: KubeClient,
    namespaces: readonly string[],
    log: Logger,
    timing: Partial<PodIndexTiming> = {},
    private readonly onChange: (up: boolean) => void = () => undefined,
  ) {
    const t = { ...DEFAULT_POD_INDEX_TIMING, ...timing };
    const unique = [...new Set(namespaces)];
    const list = unique.length > 0 ? unique : [''];
    this.scopes = list.map(
      (ns) =>
        new PodScope(
          client,
          ns,
          log,
          t,
          () => {
            const now = this.up;
            if (now !== this.lastUp) {
              this.lastUp = now;
              this.onChange(now);
            }
          },
          client.defaultNamespace,
          this.guard,
        ),
    );
  }

  /** Starts every scope; resolves once each has made its first attempt (bounded by `waitMs`). */
  async start(waitMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.scopes.map((s) => s.start())), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  stop(): void {
    for (const s of this.scopes) s.stop();
  }

  /** Up while every scope's watch is connected and its listing is in. */
  get up(): boolean {
    return this.scopes.every((s) => s.state === 'up');
  }

  get connecting(): boolean {
    return this.scopes.some((s) => s.state === 'connecting');
  }

  /** Why the cluster is not up: the first scope's reason. */
  get downReason(): string {
    const s = this.scopes.find((x) => x.state !== 'up');
    return s ? `${s.downReason}` : '';
  }

  /** The namespaces served ('' = all). */
  get namespaces(): string[] {
    return this.scopes.map((s) => s.namespace);
  }

  get size(): number {
    return this.scopes.reduce((n, s) => n + s.pods.size, 0);
  }

  get resyncs(): number {
    return this.scopes.reduce((n, s) => n + s.resyncs, 0);
  }

  covers(namespace: string): boolean {
    return this.scopes.some((s) => s.covers(namespace));
  }

  lookup(target: Target): PodRecord[] {
    return this.scopes.flatMap((s) => s.lookup(target));
  }

  all(): PodRecord[] {
    return this.scopes.flatMap((s) => [...s.pods.values()]);
  }

  /**
   * A direct listing (a cross-check after a miss): the pods it finds go into the index, except
   * one that had a watch event while the listing was on its way (see ListingGuard), and none in
   * a scope listed again meanwhile: events lost before its relist (a 410) never reached the guard.
   */
  confirm(list: () => Promise<PodRecord[]>): Promise<PodRecord[]> {
    const resyncs = this.scopes.map((s) => s.resyncs);
    return this.guard.listing(list, (p) => p.uid, (p) => {
      this.scopes.forEach((s, i) => {
        if (s.covers(p.namespace) && s.resyncs === resyncs[i]) s.upsert(p);
      });
    });
  }

  get clusterName(): string {
    return this.client.cluster;
  }
}
