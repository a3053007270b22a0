import type { ClientRequest, IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { scanOverran } from '../backend/scan-batcher.js';
import { DEFAULT_OPEN_TIMEOUT_MS } from '../config/limits.js';
import { EntryError, ignoreError } from '../errors.js';
import { failureText, httpError, isUnreachable, type KubeClient, readBody } from './kube-client.js';

/**
 * The apiserver's `pods/exec` over WebSocket (the channel protocol kubectl and client-go speak):
 * every binary message starts with a channel byte.
 */
export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const;

/** v5 adds closing stdin (channel 255, KEP-4006); v4 is what older servers (1.20) offer. */
export const V5 = 'v5.channel.k8s.io';
export const V4 = 'v4.channel.k8s.io';

export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
}

export interface ExecSocketOptions {
  command: readonly string[];
  tty: boolean;
  stdin: boolean;
  /** Longest wait for the upgrade. */
  timeoutMs?: number;
  /**
   * Why the container does not run, as the pod's status last said: told with a refusal as not
   * running, where the kubelet says only `container not found ("main")`.
   */
  downReason?: string;
}

export function execPath(t: ExecTarget, o: ExecSocketOptions): string {
  const q = new URLSearchParams();
  for (const c of o.command) q.append('command', c);
  q.set('container', t.container);
  q.set('stdin', String(o.stdin));
  q.set('stdout', 'true');
  // A TTY has one output stream; the kubelet refuses stderr beside it.
  q.set('stderr', String(!o.tty));
  q.set('tty', String(o.tty));
  return `/api/v1/namespaces/${encodeURIComponent(t.namespace)}/pods/${encodeURIComponent(t.pod)}/exec?${q}`;
}

/**
 * Opens the exec socket; resolves once the upgrade is done, with the socket paused so that no
 * message is lost before a reader is attached. Rejects with an EntryError that says why: the
 * apiserver unreachable, the identity not allowed, the pod or container gone.
 */
export async function openExecSocket(client: KubeClient, t: ExecTarget, o: ExecSocketOptions): Promise<WebSocket> {
  const base = await client.requestOptions().catch((err: unknown) => {
    throw new EntryError('ENTRY_EXEC_FAILED', `credentials for cluster ${client.cluster}: ${failureText(err)}`, { cause: err });
  });
  const url = (client.server + execPath(t, o)).replace(/^http/, 'ws');
  const where = `${t.namespace}/${t.pod}`;
  const timeoutMs = o.timeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
  return client.timed(
    'exec',
    new Promise<WebSocket>((resolve, reject) => {
      // Whether the request has gone out whole (its own 'finish': the socket's connect and TLS
      // handshake say nothing of it, and a kept-alive socket has neither).
      let sent = false;
      const ws = new WebSocket(url, [V5, V4], {
        ...base,
        headers: base.headers,
        perMessageDeflate: false,
        // The same bound client-go's stream reader has no need of: output frames are small.
        maxPayload: 64 * 1024 * 1024,
        finishRequest: (req: ClientRequest) => {
          req.once('finish', () => (sent = true));
          req.end();
        },
      });
      let settled = false;
      // Its own timer, not ws's handshakeTimeout: that is an idle timeout of the request's socket,
      // which over TLS fired at twice the time asked for (10 s for 5 s).
      const timer = setTimeout(() => {
        const error = new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `cluster ${client.cluster}: exec in ${where}: no answer within ${timeoutMs} ms`);
        if (sent) UNANSWERED.add(error);
        fail(error);
      }, timeoutMs);
      const fail = (err: EntryError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', ignoreError);
        ws.terminate();
        reject(err);
      };
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        void readBody(res, 64 * 1024).then(
          (body) => fail(refusal(client, res.statusCode ?? 0, body, where, t.container, o.downReason)),
          (err: unknown) => fail(new EntryError('ENTRY_EXEC_FAILED', `exec in ${where}: ${failureText(err)}`)),
        );
      });
      ws.on('error', (err) => {
        const error = isUnreachable(err)
          ? new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `cluster ${client.cluster} unreachable: ${failureText(err)}`, { cause: err })
          : new EntryError('ENTRY_EXEC_FAILED', `exec in ${where}: ${failureText(err)}`, { cause: err });
        if (sent) UNANSWERED.add(error);
        fail(error);
      });
      ws.on('open', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners('unexpected-response');
        ws.removeAllListeners('error');
        if (ws.protocol !== V4 && ws.protocol !== V5) {
          ws.on('error', ignoreError);
          ws.terminate();
          reject(new EntryError('ENTRY_EXEC_FAILED', `the apiserver of cluster ${client.cluster} speaks ${ws.protocol || 'no'} exec protocol; Entry needs ${V4} or ${V5}`));
          return;
        }
        ws.pause();
        resolve(ws);
      });
    }),
  );
}

/** Opens that failed once their request had gone out: the command may run (see `unanswered`). */
const UNANSWERED = new WeakSet<EntryError>();

/**
 * Whether an open that failed may have been carried out: the link broke (or the wait for the
 * upgrade ran out) after the request went out, and the kubelet may have started the command.
 * A refusal, or a connection that never came up, started nothing.
 */
export function unanswered(err: unknown): boolean {
  return UNANSWERED.has(err as EntryError);
}

/** Why the apiserver refused the upgrade, in Entry's terms; `downReason` added to a refusal as not running. */
function refusal(client: KubeClient, status: number, body: Buffer, where: string, container: string, downReason = ''): EntryError {
  const e = httpError(status, body, `exec in ${where}`);
  if (status === 401) return new EntryError('ENTRY_EXEC_FAILED', `cluster ${client.cluster} does not accept the broker's credentials: ${e.message}`);
  if (status === 403) {
    return new EntryError('ENTRY_EXEC_FAILED', `the broker's Kubernetes identity may not exec in ${where} (it needs create and get on pods/exec): ${e.message}`);
  }
  if (status === 404) return new EntryError('ENTRY_CONTAINER_GONE', `pod ${where} no longer exists`);
  // Go's HTTP server refuses a request line and headers past its MaxHeaderBytes (1 MiB by default).
  if (status === 414 || status === 431) {
    return new EntryError('ENTRY_BAD_REQUEST', `the command line is too long for Kubernetes exec, which carries it in the URL; pass data on stdin (cluster ${client.cluster} answered HTTP ${status})`);
  }
  if (status === 400 && /container .* (not found|is not valid)/i.test(e.message)) return new EntryError('ENTRY_NOT_FOUND', `pod ${where} has no container ${container}`);
  const why = downReason ? `: ${downReason}` : '';
  if (status === 400 && /not running|pending|terminated|completed|waiting/i.test(e.message)) return new EntryError('ENTRY_NOT_RUNNING', `${e.message}${why}`);
  // The kubelet's answers, passed on by the apiserver as 500s.
  if (/container not found|container not running|cannot exec in a stopped/i.test(e.message)) return new EntryError('ENTRY_NOT_RUNNING', `container ${container} of ${where} is not running (${e.message})${why}`);
  if (/error dialing backend/i.test(e.message)) return new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `the node of ${where} cannot be reached from cluster ${client.cluster}'s apiserver: ${e.message}`);
  if (status === 503 || status === 502 || status === 504) return new EntryError('ENTRY_CLUSTER_UNAVAILABLE', `cluster ${client.cluster}: ${e.message}`);
  return new EntryError('ENTRY_EXEC_FAILED', e.message);
}

/** The end of an exec, from the status channel's metav1.Status. */
export type ExecStatus = { exitCode: number } | { failure: string; reason: string };

export function parseStatus(raw: Buffer): ExecStatus | undefined {
  if (raw.length === 0) return undefined;
  let s: { status?: string; reason?: string; message?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
  try {
    s = JSON.parse(raw.toString('utf8'));
  } catch {
    return { failure: `unreadable exec status: ${raw.toString('utf8').slice(0, 200)}`, reason: '' };
  }
  if (s.status === 'Success') return { exitCode: 0 };
  if (s.reason === 'NonZeroExitCode') {
    const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return { exitCode: code };
  }
  return { failure: s.message ?? s.reason ?? 'exec failed', reason: s.reason ?? '' };
}

/**
 * A channel message: the channel byte, an optional prefix, then the data. One copy, which ws
 * would make anyway to mask a buffer it does not own.
 */
export function channelFrame(channel: number, data?: Uint8Array, prefix?: Uint8Array): Buffer {
  const len = data?.byteLength ?? 0;
  const pre = prefix?.byteLength ?? 0;
  const buf = Buffer.allocUnsafe(1 + pre + len);
  buf[0] = channel;
  if (prefix && pre > 0) buf.set(prefix, 1);
  if (data && len > 0) buf.set(data, 1 + pre);
  return buf;
}

/**
 * The most a collected command may send, stdout, stderr and status together. The reaper's scan
 * prints one count (a few bytes); when it cannot run, a shell or runtime error line (a few
 * hundred) and a metav1.Status (under 1 KiB) come instead. 64 KiB is far above all of that and
 * small enough to hold for every session ending at once.
 */
export const COLLECT_MAX_BYTES = 64 * 1024;

/**
 * How often a collected command's socket is pinged (a third of its time when that is shorter):
 * a ping still unanswered at the next is a link gone silent (an apiserver or kubelet that
 * stopped answering), not a slow command. Such a scan is failed at once and not marked as one
 * that overran: halves would only wait out two more timeouts against the same silence. The
 * kubelet's WebSocket answers a ping from the goroutine that reads the socket, whatever the
 * command is doing.
 */
export const COLLECT_PING_MS = 5_000;

/** Runs a short command without stdin and collects its output (the reaper's scans). */
export async function execCollect(client: KubeClient, t: ExecTarget, command: readonly string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string; status: ExecStatus | undefined }> {
  const ws = await openExecSocket(client, t, { command, tty: false, stdin: false, timeoutMs });
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const status: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (why: string, overran = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearInterval(pinger);
      ws.terminate();
      const failure = new EntryError('ENTRY_EXEC_FAILED', `${command[0]} in ${t.namespace}/${t.pod} ${why}`);
      reject(overran ? scanOverran(failure) : failure);
    };
    // The exec runs (the upgrade was answered): a scan this long may finish for fewer marks.
    const timer = setTimeout(() => fail(`gave no answer within ${timeoutMs} ms`, true), timeoutMs);
    const pingEvery = Math.min(COLLECT_PING_MS, Math.ceil(timeoutMs / 3));
    let unanswered = false;
    const pinger = setInterval(() => {
      if (unanswered) {
        // After the socket's waiting input is read: a pong held up behind a busy event loop counts.
        setImmediate(() => {
          if (unanswered) fail(`stopped answering: a ping had no answer within ${pingEvery} ms`);
        });
        return;
      }
      unanswered = true;
      ws.ping();
    }, pingEvery);
    ws.on('pong', () => (unanswered = false));
    ws.on('message', (data: Buffer) => {
      if (data.length < 2 || settled) return;
      size += data.length - 1;
      if (size > COLLECT_MAX_BYTES) {
        fail(`printed more than ${COLLECT_MAX_BYTES} bytes, far more than it should; stopped`);
        return;
      }
      const body = data.subarray(1);
      if (data[0] === CHANNEL.stdout) out.push(body);
      else if (data[0] === CHANNEL.stderr) err.push(body);
      else if (data[0] === CHANNEL.status) status.push(body);
    });
    ws.on('error', ignoreError);
    ws.on('close', () => {
      clearTimeout(timer);
      clearInterval(pinger);
      if (settled) return;
      settled = true;
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), status: parseStatus(Buffer.concat(status)) });
    });
    ws.resume();
  });
}
