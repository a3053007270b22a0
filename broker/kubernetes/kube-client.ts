import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { createRequire } from 'node:module';
import type { KubeConfig as KubeConfigType, Watch as WatchType } from '@kubernetes/client-node';
import { ConfigError } from '../config/config-error.js';

/**
 * The broker's connection to one Kubernetes apiserver: who it is (kubeconfig context or the
 * pod's service account), and plain REST calls signed with that identity. Everything the backend
 * sends goes through `requestOptions`, so bearer tokens, client certificates, exec plugins and
 * the CA are applied exactly as client-node applies them.
 */

type ClientNode = typeof import('@kubernetes/client-node');

let clientNode: ClientNode | undefined;

/**
 * client-node is loaded when a Kubernetes backend is configured, not when the broker starts:
 * its generated API costs about a second and 60 MB, which a Docker-only broker must not pay.
 */
function loadClientNode(): ClientNode {
  clientNode ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientNode;
  return clientNode;
}

/** Observes one apiserver call: cluster, call name, seconds, whether it failed (metrics). */
export type KubeCallObserver = (cluster: string, call: string, seconds: number, failed: boolean) => void;

export interface KubeClientOptions {
  /** A kubeconfig file, or `in-cluster` for the pod's own service account. */
  kubeconfig: string;
  /** A context of that file; undefined: its current context. */
  context?: string | null | undefined;
  onCall?: KubeCallObserver | undefined;
}

/** An apiserver answer that is not 2xx, with the Status message Kubernetes gave. */
export class KubeHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeHttpError';
  }
}

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export class KubeClient {
  /** The cluster's name for people and for target display: the context's cluster, or `in-cluster`. */
  readonly cluster: string;
  /** https://host:port, without a trailing slash. */
  readonly server: string;
  /** The namespace the identity belongs to (the context's, or the service account's); '' when none. */
  readonly defaultNamespace: string;
  private readonly kc: KubeConfigType;
  private readonly onCall: KubeCallObserver | undefined;
  /** The agent of the credentials in use, kept for its TLS sessions (see `requestOptions`). */
  private kept: { tls: string; agent: HttpsAgent } | undefined;

  private constructor(kc: KubeConfigType, cluster: string, server: string, defaultNamespace: string, onCall: KubeCallObserver | undefined) {
    this.kc = kc;
    this.cluster = cluster;
    this.server = server;
    this.defaultNamespace = defaultNamespace;
    this.onCall = onCall;
  }

  /** Loads the identity. Throws ConfigError with one clear line for a bad file or context. */
  static load(o: KubeClientOptions): KubeClient {
    const { KubeConfig } = loadClientNode();
    const kc = new KubeConfig();
    if (o.kubeconfig === 'in-cluster') {
      if (!process.env['KUBERNETES_SERVICE_HOST']) throw new ConfigError('--kubeconfig', 'in-cluster needs KUBERNETES_SERVICE_HOST (the broker is not running in a pod)');
      try {
        kc.loadFromCluster();
      } catch (err) {
        throw new ConfigError('--kubeconfig', `in-cluster: ${(err as Error).message}`);
      }
      let ns = '';
      try {
        ns = readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim();
      } catch {
        // Without it, only cluster-wide listing or --kube-namespace can say where to look.
      }
      return new KubeClient(kc, 'in-cluster', kc.getCurrentCluster()!.server, ns, o.onCall);
    }
    try {
      kc.loadFromFile(o.kubeconfig);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message.split('\n')[0];
      throw new ConfigError('--kubeconfig', `cannot read ${o.kubeconfig}: ${why}`);
    }
    if (o.context) {
      if (!kc.getContextObject(o.context)) {
        const known = kc.getContexts().map((c) => c.name);
        throw new ConfigError('--kube-context', `no context ${JSON.stringify(o.context)} in ${o.kubeconfig} (it has: ${known.join(', ') || 'none'})`);
      }
      kc.setCurrentContext(o.context);
    }
    const contextName = kc.getCurrentContext();
    const context = contextName ? kc.getContextObject(contextName) : null;
    if (!context) throw new ConfigError(o.context ? '--kube-context' : '--kubeconfig', `${o.kubeconfig} has no current context: name one with --kube-context`);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ConfigError('--kubeconfig', `context ${contextName} names cluster ${JSON.stringify(context.cluster)}, which ${o.kubeconfig} does not define`);
    if (!/^https?:\/\//.test(cluster.server)) throw new ConfigError('--kubeconfig', `cluster ${cluster.name} has no http(s) server URL`);
    return new KubeClient(kc, cluster.name, cluster.server, context.namespace ?? '', o.onCall);
  }

  /** A watch helper signed with this identity (client-node's, line-delimited JSON events). */
  watcher(): WatchType {
    return new (loadClientNode().Watch)(this.kc);
  }

  /**
   * Options for a request to the apiserver: the CA, client certificate or token (refreshed by
   * client-node when it comes from a file or an exec plugin), and an agent carrying them.
   */
  async requestOptions(): Promise<RequestOptions & { headers: Record<string, string> }> {
    const opts: RequestOptions & { headers?: Record<string, string> } = {};
    await this.kc.applyToHTTPSOptions(opts);
    return { ...opts, agent: this.keepAgent(opts), headers: { ...(opts.headers ?? {}) } };
  }

  /**
   * client-node makes a new agent for every call, and a new agent has no TLS session to resume:
   * every exec paid a full handshake, certificate checks on both ends included, and parsed the
   * CA and client key again (0.5 ms each time). One agent per set of TLS credentials is kept,
   * with that context built once, so later connections resume its sessions; credentials that
   * change (a rotated client certificate, a new CA) get a new one. Proxy agents pass through.
   */
  private keepAgent(opts: RequestOptions): RequestOptions['agent'] {
    const made = opts.agent;
    if (!(made instanceof HttpsAgent) || made.constructor !== HttpsAgent) return made;
    const t = tlsSettings(opts);
    const id = tlsIdentity(t);
    if (this.kept?.tls === id) return this.kept.agent;
    // The old agent is let go, not destroyed: it keeps no idle sockets, and calls still on it finish.
    const { rejectUnauthorized: _verify, servername: _name, ...credentials } = t;
    const agent = new HttpsAgent({ ...t, secureContext: createSecureContext(credentials) });
    this.kept = { tls: id, agent };
    return agent;
  }

  /** Times one call for the metrics observer. */
  timed<T>(call: string, work: Promise<T>): Promise<T> {
    if (!this.onCall) return work;
    const t0 = performance.now();
    const observe = this.onCall;
    return work.then(
      (v) => {
        observe(this.cluster, call, (performance.now() - t0) / 1000, false);
        return v;
      },
      (err: unknown) => {
        observe(this.cluster, call, (performance.now() - t0) / 1000, true);
        throw err;
      },
    );
  }

  /** Starts a GET and resolves with the response once its headers are in (2xx only). */
  async stream(path: string, call: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<IncomingMessage> {
    return this.timed(call, this.open('GET', path, opts));
  }

  /**
   * A GET whose JSON answer is parsed; non-2xx rejects with KubeHttpError. `timeoutMs` bounds the
   * whole exchange, body included: a listing whose body stalls must fail (and be retried), not
   * hold its caller forever.
   */
  async getJson<T = unknown>(path: string, call: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    return this.timed(
      call,
      this.open('GET', path, { ...opts, wholeAnswer: true }).then(async (res) => JSON.parse((await readBody(res)).toString('utf8')) as T),
    );
  }

  /** `timeoutMs` bounds the wait for the headers, and with `wholeAnswer` the body's too (a stream's body is open-ended). */
  private async open(method: string, path: string, o: { timeoutMs?: number; signal?: AbortSignal; wholeAnswer?: boolean }): Promise<IncomingMessage> {
    const base = await this.requestOptions();
    const url = new URL(this.server + path);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let response: IncomingMessage | undefined;
      const req = request(url, { ...base, method, headers: { ...base.headers, accept: 'application/json' }, ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
        response = res;
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) {
          if (o.wholeAnswer) res.once('close', () => clearTimeout(timer));
          else clearTimeout(timer);
          resolve(res);
          return;
        }
        void readBody(res).then(
          (body) => {
            clearTimeout(timer);
            reject(httpError(res.statusCode ?? 0, body, `${method} ${url.pathname}`));
          },
          (err: unknown) => {
            clearTimeout(timer);
            reject(err as Error);
          },
        );
      });
      const timer = o.timeoutMs
        ? setTimeout(() => {
            const err = Object.assign(new Error(`no answer within ${o.timeoutMs} ms`), { code: 'ETIMEDOUT' });
            // A body being read fails with it (readBody listens on the response), first.
            response?.destroy(err);
            req.destroy(err);
          }, o.timeoutMs)
        : undefined;
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end();
    });
  }
}

type TlsSettings = Pick<SecureContextOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase'> & { rejectUnauthorized?: boolean; servername?: string };

/** What client-node set for TLS, and nothing else (no undefined keys). */
function tlsSettings(opts: RequestOptions & TlsSettings): TlsSettings {
  const out: Record<string, unknown> = {};
  for (const k of TLS_KEYS) if (opts[k] !== undefined) out[k] = opts[k];
  return out as TlsSettings;
}

const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

/** TLS settings as one digest: they hold PEMs of kilobytes, and a key is a secret. */
function tlsIdentity(t: TlsSettings): string {
  const h = createHash('sha256');
  for (const k of TLS_KEYS) {
    const v = t[k];
    for (const part of Array.isArray(v) ? v : [v]) {
      const bytes = part === undefined ? '' : typeof part === 'string' || Buffer.isBuffer(part) ? part : JSON.stringify(part);
      h.update(`${k}:${Buffer.byteLength(bytes)}:`).update(bytes);
    }
  }
  return h.digest('base64url');
}

export function readBody(res: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        res.destroy(new Error(`answer larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    // Destroyed with a reason (a timeout): that reason, not the bare cut.
    const cut = () => reject(res.errored ?? new Error('answer cut short'));
    res.on('aborted', cut);
    res.on('close', () => {
      if (!res.complete) cut();
    });
  });
}

/** A KubeHttpError from a non-2xx answer, with the metav1.Status message when there is one. */
export function httpError(statusCode: number, body: Buffer, what: string): KubeHttpError {
  let reason = '';
  let message = body.toString('utf8').trim().slice(0, 500);
  try {
    const status = JSON.parse(body.toString('utf8')) as { reason?: string; message?: string };
    reason = status.reason ?? '';
    if (status.message) message = status.message;
  } catch {
    // Not a Status: keep the text.
  }
  return new KubeHttpError(statusCode, reason, `${what}: HTTP ${statusCode}${message ? ` ${message}` : ''}`);
}

/** A connection-level failure (nothing answered), as opposed to an apiserver's refusal. */
export function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'ETIMEDOUT' ||
    code === 'EPIPE' ||
    code === 'ECONNABORTED' ||
    code === 'UND_ERR_SOCKET' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE'
  );
}

/** A short reason for people: `ECONNREFUSED`, or the message's first line. */
export function failureText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.code && isUnreachable(err)) return e.code;
  return (e.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}
