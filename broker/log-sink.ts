import type { Writable } from 'node:stream';

/**
 * A line sink over a stream that may be slower than the broker (a pipe to a busy log
 * collector, a stopped journald). Lines wait in memory only up to `maxBacklog` bytes; beyond
 * that they are dropped and counted, and the count is written as a warning once the stream
 * drains. The broker's memory then stays bounded, and the log says what it lost.
 */
export function boundedSink(stream: Writable, maxBacklog: number, now: () => Date = () => new Date()): (line: string) => void {
  // Lines dropped since the stream last drained; while non-zero, a report waits on 'drain'.
  let dropped = 0;
  const report = () => {
    stream.write(`${JSON.stringify({ time: now().toISOString(), level: 'warn', msg: 'log lines dropped: the log sink was slower than the broker', dropped, logBacklog: maxBacklog })}\n`);
    dropped = 0;
  };
  // The lines of one turn of the event loop leave together, in writes of up to `batch` bytes:
  // when a thousand clients drop at once, their session-end lines cost a few system calls, not
  // a thousand in a row while every other session waits. A batch stays well under the backlog,
  // so held lines are never mistaken for a slow stream. What is still held goes out at exit.
  const batch = Math.min(64 * 1024, Math.floor(maxBacklog / 2));
  let corked = false;
  const flush = () => {
    if (!corked) return;
    corked = false;
    stream.uncork();
  };
  process.once('exit', flush);
  // A sink that failed (its reader went away: EPIPE when a `| tee` or log shipper restarts) takes
  // no more lines: they are lost, and there is no one left to tell. The sessions go on; left
  // unheard, the error would end the broker as an uncaught exception.
  let failed = false;
  stream.on('error', () => {
    failed = true;
  });
  return (line) => {
    if (failed) return;
    // Only a backlog the stream has said it must drain is refused (so 'drain' will come to
    // report the count): a lone long line always goes out.
    if (stream.writableNeedDrain && stream.writableLength + Buffer.byteLength(line) > maxBacklog) {
      if (dropped++ === 0) stream.once('drain', report);
      return;
    }
    if (!corked) {
      corked = true;
      stream.cork();
      setImmediate(flush);
    }
    stream.write(line);
    if (stream.writableLength >= batch) flush();
  };
}
