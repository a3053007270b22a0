import type { ChildProcess } from 'node:child_process';

/** Signals a child (SIGTERM unless told) and resolves once it has exited; at once if it already has. */
export async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

/** Calls `probe` until it resolves truthy, every `everyMs`; fails after `timeoutMs` or as soon as `child` exits. */
export async function waitForChild(child: ChildProcess, what: string, probe: () => Promise<unknown>, timeoutMs = 30_000, everyMs = 100, detail = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await probe().catch(() => false);
    if (ok) return;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it answered${detail()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs} ms${detail()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
