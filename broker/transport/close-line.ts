import type { EndReason } from '../session/types.js';

const RED = '\x1b[31m';
const RESET = '\x1b[0m';

/** The CLOSE content an original client prints to stderr: red for failures. */
export function closeLine(reason: EndReason): string {
  switch (reason.kind) {
    case 'exited':
      return `\r\nexited with code ${reason.exitCode}\r\n`;
    case 'client-gone':
      return '\r\nclient disconnected\r\n';
    case 'failed':
      return `\r\n${RED}entry: ${reason.error.message}${RESET}\r\n`;
  }
}

/** WebSocket close codes: 1000 on a normal end, the error's own code otherwise. */
export function closeCodeOf(reason: EndReason): number {
  return reason.kind === 'failed' ? reason.error.closeCode : 1000;
}

/** A close frame's reason is at most 123 bytes (RFC 6455 §5.5: 125 minus the code). */
export function closeReasonText(reason: EndReason): string {
  const text = reason.kind === 'failed' ? reason.error.code : reason.kind === 'exited' ? `exit ${reason.exitCode}` : 'client gone';
  return Buffer.byteLength(text) <= 123 ? text : text.slice(0, 100);
}
