import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

export interface StoppedReaderResult {
  /** MD5 of everything the command printed, read after it was continued. */
  md5: string;
  bytes: number;
  /** Bytes read when it was stopped: the rest was still on its way. */
  atStop: number;
  status: number | null;
  stderr: string;
}

export interface StoppedReader {
  /** Resolves once the reader has read its first output and been stopped. */
  stopped: Promise<void>;
  /** Continues it (SIGCONT). */
  resume(): void;
  /** Resolves once it has exited, with all it read. */
  done: Promise<StoppedReaderResult>;
}

/**
 * A process (the CLI, usually) stopped with SIGSTOP as soon as its first output is read: a
 * reader paused mid-output, as a terminal's Ctrl-S or a suspended laptop leaves one. Its socket
 * stays open and unread until `resume`.
 */
export function stoppedReader(argv: readonly string[], env: NodeJS.ProcessEnv): StoppedReader {
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const hash = createHash('md5');
  let bytes = 0;
  let atStop = -1;
  let stderr = '';
  let stopped!: () => void;
  let failed!: (err: Error) => void;
  const stoppedAt = new Promise<void>((resolve, reject) => {
    stopped = resolve;
    failed = reject;
  });
  child.stdout.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
    if (atStop < 0) {
      atStop = bytes;
      child.kill('SIGSTOP');
      stopped();
    }
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<StoppedReaderResult>((resolve, reject) => {
    child.on('error', (err) => {
      failed(err);
      reject(err);
    });
    child.on('close', (status) => {
      if (atStop < 0) failed(new Error(`exited (${status}) before its first output: ${stderr.trim()}`));
      resolve({ md5: hash.digest('hex'), bytes, atStop, status, stderr });
    });
  });
  return { stopped: stoppedAt, resume: () => void child.kill('SIGCONT'), done };
}
