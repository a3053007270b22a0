import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { ListingGuard } from '../backend/listing-guard.js';
import { RetrySchedule } from '../backend/retry-schedule.js';
import type { Logger } from '../log.js';
import { applyEvent, type ContainerEvent, eventMatters, type IndexedContainer, readEvents } from './docker-events.js';
import { withTimeout } from '../backend/with-timeout.js';

export type { IndexedContainer } from './docker-events.js';

/** Label sets that name a target. Entry's own labels first, then Docker Compose's. */
export const LABEL_SCHEMES = [
  { app: 'entry.app', proc: 'entry.proc', instance: 'entry.instance' },
  { app: 'com.docker.compose.project', proc: 'com.docker.compose.service', instance: 'com.docker.compose.container-number' },
] as const;

export interface IndexTarget {
  app: string;
  proc: string;
  instance: string;
}

export type HostState = 'connecting' | 'up' | 'down';

/** What an index needs of its host (a DockerHost): its name, address and client; it sets `index`. */
export interface IndexedHost {
  name: string;
  url: string;
  docker: Docker;
  index?: HostContainerIndex;
}

export interface IndexTiming {
  /** How often a connected host is pinged: a stalled stream (a silent network) is noticed within this plus the timeout. */
  pingIntervalMs: number;
  /** Longest wait for a ping or a listing before the host counts as down. */
  requestTimeoutMs: number;
  /** Reconnect backoff: first wait, doubled per failure up to the maximum, with ±20 % jitter. */
  backoffInitialMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_INDEX_TIMING: IndexTiming = { pingIntervalMs: 5_000, requestTimeoutMs: 3_000, backoffInitialMs: 200, backoffMaxMs: 5_000 };

/** Longest wait for one Engine API call to an ssh:// host (a handshake and a remote process each time). */
const SSH_REQUEST_TIMEOUT_MS = 10_000;

const targetKey = (app: string, proc: string, instance: string) => `${app}\0${proc}\0${instance}`;

/**
 * The one name a container's labels give it, or undefined when they name no app/proc/instance.
 * Each `entry.*` label wins over its Compose counterpart (as on Kubernetes), so a container that
 * carries `entry.app` is known by that app only: a Compose alias under the project name would
 * let whoever holds the project's grant past a deny list written for the `entry.app`.
 */
export function targetOf(labels: Record<string, string>): IndexTarget | undefined {
  const [own, compose] = LABEL_SCHEMES;
  const app = labels[own.app] ?? labels[compose.app];
  const proc = labels[own.proc] ?? labels[compose.proc];
  const instance = labels[own.instance] ?? labels[compose.instance];
  return app && proc && instance ? { app, proc, instance } : undefined;
}

function keyOf(labels: Record<string, string>): string | undefined {
  const t = targetOf(labels);
  return t ? targetKey(t.app, t.proc, t.instance) : undefined;
}

/** Whether a container carries any scheme's app label (what the container list shows). */
export function isLabelled(labels: Record<string, string>): boolean {
  return LABEL_SCHEMES.some((s) => labels[s.app] !== undefined);
}

/**
 * The labelled containers of one Docker host, kept current from the engine's event stream.
 *
 * Connecting: ping, open `GET /events` (container events), list every labelled container, then
 * re-read (inspect) the containers that events touched during the listing, since an event from
 * before the listing must not undo what the listing saw. From then on events apply directly.
 * The host is `up` exactly while its event stream is connected and the listing is in; when the
 * stream ends or a ping fails it is `down` at once, and reconnects with backoff, resyncing in full.
 */
export class HostContainerIndex {
  private readonly containers = new Map<string, IndexedContainer>();
  private readonly byTarget = new Map<string, Set<string>>();
  private _state: HostState = 'connecting';
  private reason = 'connecting';
  private abort: AbortController | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private generation = 0;
  private readonly guard = new ListingGuard();
  private readonly retries: RetrySchedule;
  /** Full resyncs done (the first connect included). */
  resyncs = 0;

  constructor(
    readonly host: IndexedHost,
    private readonly log: Logger,
    private readonly timing: IndexTiming = DEFAULT_INDEX_TIMING,
    private readonly onChange: (host: string, up: boolean) => void = () => undefined,
  ) {
    this.retries = new RetrySchedule(() => this.connect(), timing);
  }

  get name(): string {
    return this.host.name;
  }

  get state(): HostState {
    return this._state;
  }

  get up(): boolean {
    return this._state === 'up';
  }

  /** Why the host is not up (for the unreachable reason). */
  get downReason(): string {
    return this.reason;
  }

  get size(): number {
    return this.containers.size;
  }

  /** Starts connecting; resolves after the first attempt, whether it worked or not. */
  start(): Promise<void> {
    return this.retries.start();
  }

  stop(): void {
    this.retries.stop();
    this.disconnect();
  }

  /** Containers that app/proc/instance names on this host, any state. */
  lookup(target: IndexTarget): IndexedContainer[] {
    const ids = this.byTarget.get(targetKey(target.app, target.proc, target.instance));
    return ids ? [...ids].map((id) => this.containers.get(id)!).filter(Boolean) : [];
  }

  /** Every labelled container on this host. */
  all(): IndexedContainer[] {
    return [...this.containers.values()];
  }

  /**
   * A direct listing (a cross-check after a miss): what it finds goes into the index, as the
   * engine's word is fresher than what the index has heard so far, except a container that had
   * an event while the listing was on its way (see ListingGuard), and all of it when the index
   * was resynced meanwhile: events missed while the stream was down never reach the guard.
   */
  confirm(list: () => Promise<IndexedContainer[]>): Promise<IndexedContainer[]> {
    const generation = this.generation;
    return this.guard.listing(list, (c) => c.id, (c) => {
      if (this.up && generation === this.generation) this.put(c);
    });
  }

  private async connect(): Promise<void> {
    if (this.retries.stopped) return;
    const generation = ++this.generation;
    const abort = new AbortController();
    this.abort = abort;
    const docker = this.host.docker;
    const t0 = performance.now();
    let pending: ContainerEvent[] | undefined = [];
    try {
      await withTimeout((docker.ping as (o: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: abort.signal }), this.timing.requestTimeoutMs, 'ping');
      const stream = (await withTimeout(docker.getEvents({ filters: { type: ['container'] }, abortSignal: abort.signal }), this.timing.requestTimeoutMs, 'events')) as Readable;
      const lost = (why: string) => {
        if (generation === this.generation) this.fail(why);
      };
      stream.on('error', (err: Error & { code?: string }) => lost(`event stream failed: ${err.code ?? err.message}`));
      stream.on('end', () => lost('event stream ended'));
      stream.on('close', () => lost('event stream closed'));
      readEvents(stream, (e) => {
        if (pending) pending.push(e);
        else this.apply(e);
      });
      const listed = await withTimeout(listLabelled(docker, abort.signal), this.timing.requestTimeoutMs * 4, 'listing containers');
      if (generation !== this.generation) return;
      this.containers.clear();
      this.byTarget.clear();
      for (const c of listed) this.put(c);
      // Events that raced the listing: read those containers again instead of replaying. One
      // pass: events from here on apply directly, and a reread one of them overtook is dropped
      // (see reread). Waiting for a pass without events would never end on a host whose health
      // checks or busy containers send them all the time.
      const touched = [...new Set(pending.filter(eventMatters).map((e) => e.id))];
      pending = undefined;
      await mapLimit(touched, 8, (id) => this.reread(docker, id, abort.signal));
      if (generation !== this.generation) return;
      this._state = 'up';
      this.reason = '';
      this.retries.succeeded();
      this.resyncs++;
      this.onChange(this.name, true);
      this.log.info('docker host up', { host: this.name, containers: this.containers.size, syncMs: Math.round(performance.now() - t0), resync: this.resyncs > 1 });
      this.schedulePing(generation);
    } catch (err) {
      if (generation !== this.generation) return;
      const e = err as Error & { code?: string };
      this.fail(e.code ?? e.message);
    }
  }

  /**
   * Reads one container again after the listing, as a listing of its own under the guard: an
   * event about it applied meanwhile is newer and wins. A container whose inspect goes
   * unanswered keeps what the listing said of it rather than holding the whole host down.
   */
  private async reread(docker: Docker, id: string, signal: AbortSignal): Promise<void> {
    const read = async (): Promise<Array<{ id: string; record: IndexedContainer | undefined }>> => {
      const timeout = AbortSignal.timeout(this.timing.requestTimeoutMs);
      try {
        const options = { abortSignal: AbortSignal.any([signal, timeout]) };
        const info = await docker.getContainer(id).inspect(options as Docker.ContainerInspectOptions);
        const labels = info.Config.Labels ?? {};
        if (!isLabelled(labels)) return [{ id, record: undefined }];
        return [{ id, record: { id, name: info.Name.replace(/^\//, ''), image: info.Config.Image, state: info.State.Status, labels, created: Math.floor(Date.parse(info.Created) / 1000) } }];
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return [{ id, record: undefined }];
        if (timeout.aborted && !signal.aborted) {
          this.log.warn('docker host: a container was not inspected in time; its listing stands', { host: this.name, container: id.slice(0, 12), timeoutMs: this.timing.requestTimeoutMs });
          return [];
        }
        throw err;
      }
    };
    await this.guard.listing(read, (r) => r.id, (r) => (r.record ? this.put(r.record) : this.remove(r.id)));
  }

  private apply(e: ContainerEvent): void {
    // Only an event that can change the record makes a listing's answer about it stale: a
    // health check's exec events would otherwise drop every reread of a busy container. The
    // common ones (exec_*, a session's own) end here, with one test.
    if (!eventMatters(e)) return;
    this.guard.heard(e.id);
    const previous = this.containers.get(e.id);
    const change = applyEvent(e, previous);
    if (!change) return;
    if ('remove' in change) this.remove(e.id);
    else if (previous || isLabelled(change.update.labels)) this.put(change.update);
  }

  private put(c: IndexedContainer): void {
    this.remove(c.id);
    if (!isLabelled(c.labels)) return;
    this.containers.set(c.id, c);
    const key = keyOf(c.labels);
    if (key === undefined) return;
    let set = this.byTarget.get(key);
    if (!set) this.byTarget.set(key, (set = new Set()));
    set.add(c.id);
  }

  private remove(id: string): void {
    const old = this.containers.get(id);
    if (!old) return;
    this.containers.delete(id);
    const key = keyOf(old.labels);
    if (key === undefined) return;
    const set = this.byTarget.get(key);
    set?.delete(id);
    if (set?.size === 0) this.byTarget.delete(key);
  }

  private schedulePing(generation: number): void {
    this.pingTimer = setTimeout(() => {
      void withTimeout(this.host.docker.ping(), this.timing.requestTimeoutMs, 'ping').then(
        () => {
          if (generation === this.generation && this.up) this.schedulePing(generation);
        },
        (err: Error & { code?: string }) => {
          if (generation === this.generation) this.fail(`ping failed: ${err.code ?? err.message}`);
        },
      );
    }, this.timing.pingIntervalMs);
    this.pingTimer.unref();
  }

  private disconnect(): void {
    this.generation++;
    clearTimeout(this.pingTimer);
    this.abort?.abort();
    this.abort = undefined;
  }

  /** The host is down: say so at once, and try again after a growing wait. */
  private fail(why: string): void {
    const wasUp = this._state === 'up';
    this.disconnect();
    this._state = 'down';
    this.reason = why;
    if (wasUp) {
      this.onChange(this.name, false);
      this.log.warn('docker host down', { host: this.name, reason: why });
    } else if (this.retries.failures === 0) {
      this.log.warn('docker host unreachable', { host: this.name, reason: why });
    }
    this.retries.failed();
  }
}

/** The indexes of every host the broker reaches; each host gets its own as `host.index`. */
export class ContainerIndex {
  readonly hosts: HostContainerIndex[];

  constructor(hosts: readonly IndexedHost[], log: Logger, timing: Partial<IndexTiming> = {}, onChange?: (host: string, up: boolean) => void) {
    const t = { ...DEFAULT_INDEX_TIMING, ...timing };
    this.hosts = hosts.map((h) => {
      // Over ssh:// every Engine API call is a new ssh connection running `docker system dial-stdio`.
      const timing = h.url.startsWith('ssh://') ? { ...t, requestTimeoutMs: Math.max(t.requestTimeoutMs, SSH_REQUEST_TIMEOUT_MS) } : t;
      const index = new HostContainerIndex(h, log, timing, onChange);
      h.index = index;
      return index;
    });
  }

  /** Connects every host; resolves once each has made its first attempt (bounded by `waitMs`). */
  async start(waitMs = 5_000): Promise<void> {
    await Promise.race([Promise.all(this.hosts.map((h) => h.start())), sleep(waitMs)]);
  }

  stop(): void {
    for (const h of this.hosts) {
      h.stop();
      if (h.host.index === h) delete h.host.index;
    }
  }

  /** Per host: whether its event stream is connected. */
  status(): Record<string, boolean> {
    return Object.fromEntries(this.hosts.map((h) => [h.name, h.up]));
  }
}

/**
 * Every labelled container of a host, by one listing per label scheme; with a target, only those
 * whose one name (`targetOf`) is that target: a label filter alone would also match a container
 * by the Compose labels its `entry.*` labels override.
 */
export async function listLabelled(docker: Docker, signal?: AbortSignal, target?: IndexTarget): Promise<IndexedContainer[]> {
  const lists = await Promise.all(
    LABEL_SCHEMES.map((s) =>
      docker.listContainers({
        all: true,
        filters: { label: target ? [`${s.app}=${target.app}`] : [s.app] },
        ...(signal ? { abortSignal: signal } : {}),
      }),
    ),
  );
  const seen = new Set<string>();
  const all = lists
    .flat()
    .filter((c) => !seen.has(c.Id) && seen.add(c.Id))
    .map((c) => ({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), image: c.Image, state: c.State, labels: c.Labels ?? {}, created: c.Created }));
  if (!target) return all;
  return all.filter((c) => {
    const t = targetOf(c.labels);
    return t !== undefined && t.app === target.app && t.proc === target.proc && t.instance === target.instance;
  });
}


async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
