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
  return (line) => {
    // Only a backlog the stream has said it must drain is refused (so 'drain' will come to
    // report the count): a lone long line always goes out.
    if (stream.writableNeedDrain && stream.writableLength + Buffer.byteLength(line) > maxBacklog) {
      if (dropped++ === 0) stream.once('drain', report);
      return;
    }
    stream.write(line);
  };
}
