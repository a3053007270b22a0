import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, type Readable } from 'node:stream';

/**
 * Streams a file whose headers are already sent. A read error (the file replaced or removed
 * while it is read) cuts the answer short: the client sees a truncated body, never a crash.
 *
 * The file is closed with the connection too: an answer to a pipelined request still queued
 * behind another is told nothing when its connection closes (Node emits no 'close' on it), and
 * its file would stay open for good, one descriptor per request anyone may send.
 */
export function sendStream(file: Readable, req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  const onClose = () => file.destroy();
  socket.once('close', onClose);
  pipeline(file, res, (err) => {
    socket.off('close', onClose);
    if (err) res.destroy();
  });
}
