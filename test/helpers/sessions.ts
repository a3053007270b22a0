import { encodeExecSpec, encodeRequest, RequestType } from '../../proto/codec.js';
import { WireClient } from './wire-client.js';

/** Opens a protocol-2 session running `argv` (non-TTY unless tty is set). */
export async function openCommand(wsUrl: string, token: string, target: { app: string; proc: string; instance: string | number }, argv: string[], tty = false): Promise<WireClient> {
  const c = await WireClient.connect(wsUrl, {
    'access-token': token,
    'app-name': target.app,
    'proc-name': target.proc,
    'instance-no': String(target.instance),
    'entry-protocol': '2',
  });
  c.ws.send(encodeRequest(RequestType.START, encodeExecSpec({ argv: argv.map((a) => Buffer.from(a)), tty, cols: tty ? 80 : 0, rows: tty ? 24 : 0 })));
  return c;
}

/** Commands and the exit code each must give, the same through every client. */
export const EXIT_CODE_CASES: ReadonlyArray<readonly [string[], number]> = [
  [['true'], 0],
  [['false'], 1],
  [['sh', '-c', 'exit 7'], 7],
  [['no-such-command'], 127],
  [['sh', '-c', 'kill -9 $$'], 137],
];

/** Polls until `check` holds (Docker has no event for "a process in a container exited"). */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
