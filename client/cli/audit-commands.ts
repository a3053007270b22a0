import WebSocket from 'ws';
import { decodeResponse, ResponseType } from '../../proto/codec.js';
import { ClientError } from '../protocol/client-error.js';
import { refusalOf } from '../protocol/refused-upgrade.js';
import { MAX_MESSAGE_BYTES, stripAnsi, unreachable } from '../protocol/connection.js';
import { clientTlsFromEnv, tlsConnectOptions } from '../protocol/tls.js';
import { brokerText } from './broker-api.js';
import { EXIT_OUTPUT_CLOSED } from './exec-command.js';
import { OutputSinks } from './output-sinks.js';
import { type Cast, parseCast } from '../web/console/cast.js';

export interface ReplayOptions {
  /** Playback speed factor (2 = twice as fast). */
  speed: number;
  /** Longest pause kept between two events, in seconds (asciinema's idle_time_limit). */
  idleLimit: number;
}

/** How long a recording has to download once its answer started: recordings run to tens of MiB. */
const RECORDING_DOWNLOAD_MS = 5 * 60_000;

/** `enter replay <id>`: plays a session's recording in this terminal, with its timing. */
export async function replayCommand(broker: string, token: string, id: string, o: ReplayOptions): Promise<void> {
  const text = await brokerText(broker, `/api/sessions/${encodeURIComponent(id)}/recording`, { token, bodyTimeoutMs: RECORDING_DOWNLOAD_MS });
  let cast: Cast;
  try {
    // A live session's recording may end in an event half written: whole lines only are played.
    cast = parseCast(text);
  } catch (err) {
    throw new ClientError('ENTRY_BAD_ANSWER', `the recording of session ${id} is ${(err as Error).message}`);
  }
  let last = 0;
  for (const [t, code, data] of cast.events) {
    const gap = Math.min(t - last, o.idleLimit) / o.speed;
    last = t;
    if (gap > 0.001) await new Promise((r) => setTimeout(r, gap * 1000));
    if (code === 'o') process.stdout.write(data);
    else if (code === 'e') process.stderr.write(data);
    else if (code === 'm') process.stderr.write(`\r\n[${data}]\r\n`);
  }
}

/** `enter watch <id>`: follows a running session read-only until it ends (admin). */
export function watchCommand(broker: string, token: string, id: string): Promise<number> {
  const url = new URL(broker.replace(/^http/, 'ws'));
  url.pathname = `${url.pathname.replace(/\/$/, '')}/watch`;
  url.searchParams.set('session', id);
  // The same TLS settings and limits as a session's connection (--ca-file, --cert, --key).
  const ws = new WebSocket(url, {
    headers: { 'access-token': token, 'entry-protocol': '2' },
    perMessageDeflate: false,
    ...tlsConnectOptions(clientTlsFromEnv()),
    handshakeTimeout: 15_000,
    maxPayload: MAX_MESSAGE_BYTES,
  });
  return new Promise((resolve, reject) => {
    let close: { text: string; code: string } | undefined;
    let failure: ClientError | undefined;
    const stop = () => ws.terminate();
    // Output is read from the socket no faster than the terminal takes it. A reader that went
    // away (`| head`) stops the watch quietly, as a program ended by SIGPIPE; not with a close
    // handshake, since reading may be paused for that very output, and a watch ends nothing.
    const output = new OutputSinks(ws, stop, [process.stdout, process.stderr]);
    const toStdout = output.writer(process.stdout);
    const toStderr = output.writer(process.stderr);
    ws.on('message', (data: Buffer) => {
      if (failure) return;
      let m;
      try {
        m = decodeResponse(data);
      } catch {
        // Output lost in between: a watch that went on would show a screen that never was.
        failure = new ClientError('ENTRY_BAD_FRAME', 'the broker sent a malformed message; the watch is stopped');
        stop();
        return;
      }
      if (m.msgType === ResponseType.STDOUT) toStdout(m.content);
      else if (m.msgType === ResponseType.STDERR) toStderr(m.content);
      else if (m.msgType === ResponseType.CLOSE) close = { text: stripAnsi(Buffer.from(m.content).toString()), code: m.code };
    });
    ws.on('unexpected-response', (_req, res) => {
      void refusalOf(res).then((err) => {
        failure ??= err;
        stop();
      });
    });
    ws.on('error', (err) => {
      failure ??= unreachable(broker, err);
    });
    ws.on('close', () => {
      process.off('SIGINT', onInterrupt);
      if (output.failure) reject(new ClientError('', `writing the output failed: ${output.failure.message}`));
      else if (output.closed) resolve(EXIT_OUTPUT_CLOSED);
      else if (failure) reject(failure);
      else if (close?.code) reject(new ClientError(close.code, close.text.replace(/^entry: /, '')));
      else {
        if (close) process.stderr.write(`${close.text}\n`);
        resolve(0);
      }
    });
    const onInterrupt = () => ws.close();
    process.once('SIGINT', onInterrupt);
  });
}
