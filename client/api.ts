import { pipeline, Readable, Writable } from 'node:stream';
import { MAX_TERMINAL_SIDE, utf8 } from '../proto/codec.js';
import { CLIENT_SIGNALS, signalName } from '../proto/signals.js';
import { ClientError } from './protocol/client-error.js';
import { type ConnectOptions, endReason, ExecConnection, type SessionEnd, type Target } from './protocol/connection.js';
import { clientTlsWith } from './protocol/tls.js';

export type { Target, SessionEnd };
export { ClientError };

export interface ExecOptions {
  /** Broker address, e.g. http://127.0.0.1:8022. */
  broker: string;
  token: string;
  target: Target;
  /** argv; each argument a string or raw bytes. Empty: the interactive shell. */
  command: Array<string | Uint8Array>;
  tty?: boolean;
  user?: string;
  workdir?: string;
  /** `K=V` strings, or an object whose undefined values are left out, as child_process does. */
  env?: Record<string, string | undefined> | string[];
  /** Container of a multi-container pod (Kubernetes); default: the pod's default container. */
  container?: string;
  /**
   * Initial terminal size (TTY only): whole cells from 1 to 10000, as resize() takes (0 or left
   * out: the broker's default). Any other number rejects with a RangeError (ERR_OUT_OF_RANGE).
   */
  cols?: number;
  rows?: number;
  term?: string;
  connectTimeoutMs?: number;
  /** PEM of a CA to trust for https:// brokers, on top of the system's (default: ENTRY_CA_FILE). */
  ca?: string | Uint8Array;
  /** PEM client certificate and key, for brokers that require one (default: ENTRY_CERT_FILE, ENTRY_KEY_FILE). */
  cert?: string | Uint8Array;
  key?: string | Uint8Array;
  /**
   * Resume the session when the connection breaks (default true): reconnect with backoff while
   * the broker keeps it (--resume-grace), with no output lost or repeated and no input lost or
   * doubled. false: a broken connection ends the call with ENTRY_CONNECTION_LOST.
   */
  resume?: boolean;
}

export interface SpawnOptions extends ExecOptions {
  /**
   * Aborting it ends the session (the broker ends the remote processes, as close() does) and
   * wait() rejects with its reason, as fetch does; aborted before the session is open, spawn()
   * rejects with it and the command never starts.
   */
  signal?: AbortSignal;
}

export interface RunOptions extends SpawnOptions {
  /** Bytes for stdin (then EOF). Without it stdin is closed at once. */
  stdin?: string | Uint8Array | Readable;
  /** Aborting it ends the session (the broker ends the remote processes) and rejects with its reason, as fetch does. */
  signal?: AbortSignal;
  /**
   * Bytes of stdout, and of stderr, to collect (default: no limit). Past it the session ends and
   * run() rejects with ENTRY_OUTPUT_TOO_LARGE, as execFile's maxBuffer does: for output whose size
   * the caller does not control.
   */
  maxBuffer?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

/** A running remote command with Node streams; output streams honour backpressure. */
export interface RemoteProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Tells the TTY its new size; throws a TypeError, or a RangeError (ERR_OUT_OF_RANGE) for a size that is not whole cells from 1 to 10000. */
  resize(cols: number, rows: number): void;
  /** Sends a signal ("INT", "TERM", …; throws a TypeError for a name the broker does not deliver) to the remote processes. */
  signal(name: string): void;
  /** Disconnects; the broker ends the remote processes, and `wait` rejects with ENTRY_CLOSED unless the command had exited. */
  close(): void;
  /** Resolves with the exit code; rejects with ClientError when the session failed. */
  wait(): Promise<number>;
}

/** Node's way of saying an argument is wrong: a TypeError with its code. */
function invalid(what: string, want: string, got: unknown, code = 'ERR_INVALID_ARG_TYPE'): TypeError {
  const shown = got === null ? 'null' : typeof got === 'string' ? JSON.stringify(got) : typeof got === 'number' ? String(got) : `type ${typeof got}`;
  return Object.assign(new TypeError(`${what} must be ${want}, got ${shown}`), { code });
}

/**
 * A side of resize() or of spawn()'s first size: the broker ignores a WINCH that is not whole
 * cells from 1 to MAX_TERMINAL_SIDE, and cuts a START's side down to it, so one is refused here,
 * as Node refuses a number out of its range.
 */
function checkSide(side: 'cols' | 'rows', v: unknown): void {
  if (typeof v !== 'number') throw invalid(side, 'a whole number of cells', v);
  if (!(Number.isInteger(v) && v >= 1 && v <= MAX_TERMINAL_SIDE)) {
    throw Object.assign(new RangeError(`${side} must be a whole number of cells from 1 to ${MAX_TERMINAL_SIDE}, got ${v}`), { code: 'ERR_OUT_OF_RANGE' });
  }
}

/**
 * Options checked before anything is sent: a mistake of the caller's is said as one, by name,
 * rather than as a broker address that is not one, a TypeError from deep inside, or a START the
 * broker cannot read (ENTRY_BAD_FRAME).
 */
function checkOptions(o: SpawnOptions): void {
  if (typeof o !== 'object' || o === null) throw invalid('options', 'an object', o);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid('signal', 'an AbortSignal', o.signal);
  if (typeof o.broker !== 'string') throw invalid('broker', 'a string (http(s):// or ws(s):// address)', o.broker);
  if (typeof o.token !== 'string') throw invalid('token', 'a string', o.token);
  const t = o.target as Partial<Target> | undefined;
  if (typeof t !== 'object' || t === null) throw invalid('target', 'an object { app, proc, instance }', t);
  for (const field of ['app', 'proc'] as const) {
    if (typeof t[field] !== 'string') throw invalid(`target.${field}`, 'a string', t[field]);
    if (t[field] === '') throw invalid(`target.${field}`, 'a non-empty string', t[field], 'ERR_INVALID_ARG_VALUE');
  }
  const i = t.instance;
  if (typeof i !== 'string' && typeof i !== 'number') throw invalid('target.instance', 'a string or a number', i);
  if (i === '' || (typeof i === 'number' && !(Number.isSafeInteger(i) && i >= 0))) throw invalid('target.instance', 'a non-empty string or a whole number', i, 'ERR_INVALID_ARG_VALUE');
  if (!Array.isArray(o.command)) throw invalid('command', 'an array of arguments ([] for the interactive shell)', o.command);
  o.command.forEach((a, n) => {
    if (typeof a !== 'string' && !(a instanceof Uint8Array)) throw invalid(`command[${n}]`, 'a string or a Uint8Array', a);
  });
  const env = o.env as unknown;
  if (Array.isArray(env)) {
    env.forEach((kv, n) => {
      if (typeof kv !== 'string') throw invalid(`env[${n}]`, 'a string (K=V)', kv);
    });
  } else if (env !== undefined) {
    if (typeof env !== 'object' || env === null) throw invalid('env', 'an object or an array of K=V strings', env);
    // As child_process: undefined is left out, numbers and booleans are sent as text; what Node
    // would send as "null" or "[object Object]" is the caller's mistake.
    for (const [key, v] of Object.entries(env)) {
      if (!(v === undefined || ['string', 'number', 'boolean', 'bigint'].includes(typeof v))) throw invalid(`env[${JSON.stringify(key)}]`, 'a string (or undefined, to leave it out)', v);
    }
  }
  // As resize() refuses them: the broker would cut a side past its limit down to it unsaid.
  // 0 is a side left out (the broker's default size), as on the wire.
  for (const side of ['cols', 'rows'] as const) {
    const v = o[side];
    if (v !== undefined && v !== 0) checkSide(side, v);
  }
}

function connectOptions(o: ExecOptions): ConnectOptions {
  checkOptions(o);
  const env = Array.isArray(o.env) ? o.env : Object.entries(o.env ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  return {
    broker: o.broker,
    token: o.token,
    target: o.target,
    resume: o.resume ?? true,
    ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    ...(o.ca || o.cert || o.key ? { tls: clientTlsWith({ ...(o.ca ? { ca: Buffer.from(o.ca) } : {}), ...(o.cert ? { cert: Buffer.from(o.cert) } : {}), ...(o.key ? { key: Buffer.from(o.key) } : {}) }) } : {}),
    spec: {
      argv: o.command.map((a) => (typeof a === 'string' ? utf8(a) : a)),
      tty: o.tty ?? false,
      user: o.user ?? '',
      workdir: o.workdir ?? '',
      env,
      container: o.container ?? '',
      cols: o.cols ?? 0,
      rows: o.rows ?? 0,
      term: o.term ?? '',
    },
  };
}

/** Turns a session end into an exit code, or the error that prevented one. */
export function exitCodeOf(end: SessionEnd): number {
  if (end.exitCode !== undefined) return end.exitCode;
  throw new ClientError(end.code || 'ENTRY_CONNECTION_LOST', endReason(end));
}

/** Output held for each of stdout and stderr before the broker is asked to wait: a Linux pipe's 64 KiB. */
const OUTPUT_BUFFER_BYTES = 64 * 1024;

/** Starts a command and returns its streams. */
export async function spawn(options: SpawnOptions): Promise<RemoteProcess> {
  // Async: wrong options reject, as every other failure does, rather than throw.
  return start({ ...connectOptions(options), signal: options.signal });
}

/** Opens the session; its `signal`, aborted while it opens, gives up there (the command never starts). */
async function start(connect: ConnectOptions): Promise<RemoteProcess> {
  const conn = await ExecConnection.open(connect);
  const { signal } = connect;
  // Aborted once open: the session ends as close() ends it, and wait() rejects with the reason.
  const abort = () => conn.close();
  if (signal?.aborted) abort();
  else signal?.addEventListener('abort', abort, { once: true });
  // Reading pauses while any output stream's buffer is full and resumes when all have room:
  // both come over one connection, so one left unread holds the other, as a child process
  // blocked on a full stderr pipe stops writing its stdout too.
  const full = new Set<Readable>();
  const release = (stream: Readable) => {
    if (full.delete(stream) && full.size === 0) conn.resume();
  };
  const makeReadable = () => {
    const stream: Readable = new Readable({
      // A pipe's capacity: what a child process may write before an unread pipe holds it.
      highWaterMark: OUTPUT_BUFFER_BYTES,
      read() {
        release(stream);
      },
    });
    // Destroyed by its reader (a `break` out of `for await`, a pipeline whose end failed): it
    // takes nothing more, and the rest of its output is dropped rather than waited for.
    stream.once('close', () => release(stream));
    return stream;
  };
  const stdout = makeReadable();
  const stderr = makeReadable();
  const push = (stream: Readable) => (data: Buffer) => {
    if (stream.destroyed) return;
    if (!stream.push(data) && !full.has(stream)) {
      full.add(stream);
      if (full.size === 1) conn.pause();
    }
  };
  conn.on('stdout', push(stdout));
  conn.on('stderr', push(stderr));
  let inputEnded = false;
  const stdin = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (conn.write(chunk)) cb();
      else conn.once('drain', () => cb());
    },
    final(cb) {
      inputEnded = true;
      conn.endInput();
      cb();
    },
    destroy(err, cb) {
      // Destroyed by its writer, or by a pipeline whose source failed: as when a child process's
      // stdin pipe is closed, the command reads EOF after what was written, instead of waiting for more.
      if (!inputEnded) {
        inputEnded = true;
        conn.endInput();
      }
      cb(err);
    },
  });
  const result = conn.done.then((end) => {
    signal?.removeEventListener('abort', abort);
    inputEnded = true;
    stdout.push(null);
    stderr.push(null);
    // Nothing more is taken: a write still waiting, or a pipeline into stdin, ends now (as
    // writing to a process that exited does) instead of waiting for a drain that never comes.
    stdin.destroy();
    // A command that exited first keeps its exit code, as a child process that exited does.
    if (signal?.aborted && end.exitCode === undefined) throw signal.reason;
    return exitCodeOf(end);
  });
  result.catch(() => undefined);
  return {
    stdin,
    stdout,
    stderr,
    resize: (c, r) => {
      checkSide('cols', c);
      checkSide('rows', r);
      conn.resize(c, r);
    },
    signal: (name) => {
      // As process.kill does: a name the broker would ignore is the caller's mistake, said now.
      // A number (child.kill(9)) is not taken: the broker delivers names, and 9 is not one everywhere.
      if (typeof name !== 'string') throw invalid('signal', 'a signal name ("INT", "TERM", …)', name);
      if (!CLIENT_SIGNALS.has(signalName(name))) {
        throw Object.assign(new TypeError(`unknown signal: ${name} (the broker delivers ${[...CLIENT_SIGNALS].join(', ')})`), { code: 'ERR_UNKNOWN_SIGNAL' });
      }
      conn.signal(name);
    },
    close: () => conn.close(),
    wait: () => result,
  };
}

function isStream(v: unknown): v is Readable {
  return typeof v === 'object' && v !== null && typeof (v as Readable).pipe === 'function' && typeof (v as Readable).once === 'function';
}

/** Runs a command to completion and collects its output. */
export async function run(options: RunOptions): Promise<RunResult> {
  checkOptions(options);
  const { signal, maxBuffer = Infinity } = options;
  // Checked before the session opens: a pipeline that cannot take it would throw with the
  // session open, its command left waiting for input.
  const given = options.stdin as unknown;
  if (!(given === undefined || typeof given === 'string' || given instanceof Uint8Array || isStream(given))) throw invalid('stdin', 'a string, a Uint8Array or a Readable', given);
  if (!(maxBuffer >= 0)) throw new RangeError(`maxBuffer must be a number of bytes, got ${String(maxBuffer)}`);
  signal?.throwIfAborted();
  const input = options.stdin;
  let over = false;
  let inputFailed: Error | undefined;
  let proc: RemoteProcess | undefined;
  const stream = input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array) ? input : undefined;
  // Input that fails before the command is done ends the session: its end would never come.
  // Heard from the start: a file that cannot be opened fails while the session is opening.
  stream?.once('error', (e: Error) => {
    if (over) return;
    inputFailed = e;
    proc?.close();
  });
  try {
    // The signal goes with the session: aborted while it opens, the command never starts.
    proc = await start({ ...connectOptions(options), signal });
  } catch (e) {
    over = true;
    if (signal?.aborted) throw signal.reason;
    throw inputFailed ?? e;
  }
  let tooLarge: ClientError | undefined;
  const collect = (name: 'stdout' | 'stderr') => {
    const chunks: Buffer[] = [];
    let size = 0;
    proc[name].on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > maxBuffer) {
        tooLarge = new ClientError('ENTRY_OUTPUT_TOO_LARGE', `${name} passed maxBuffer (${maxBuffer} bytes): the session was ended`);
        proc.close();
        return;
      }
      chunks.push(c);
    });
    return chunks;
  };
  const out = collect('stdout');
  const err = collect('stderr');
  const ended = Promise.all([new Promise((r) => proc.stdout.on('end', r)), new Promise((r) => proc.stderr.on('end', r))]);
  if (inputFailed) proc.close();
  else if (input === undefined) proc.stdin.end();
  else if (typeof input === 'string' || input instanceof Uint8Array) proc.stdin.end(input);
  // Its own failure is heard above; a session that ends first ends the input too.
  else pipeline(input, proc.stdin, () => undefined);
  try {
    const exitCode = await proc.wait();
    await ended;
    if (inputFailed) throw inputFailed;
    signal?.throwIfAborted();
    if (tooLarge) throw tooLarge;
    return { exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    throw inputFailed ?? tooLarge ?? e;
  } finally {
    over = true;
  }
}
