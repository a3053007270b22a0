import WebSocket from 'ws';
import { decodeResponse, encodeRequest, type ResponseMessage, ResponseType, utf8 } from '../../proto/codec.js';

/**
 * A client written from the facts of the original protocol only: upgrade headers, one
 * RequestMessage per frame, ResponseMessages back. Used to check compatibility.
 */
export class WireClient {
  readonly messages: ResponseMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(decodeResponse(new Uint8Array(data)));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      for (const w of this.waiters.splice(0)) w();
      resolve({ code, reason: reason.toString() });
    }));
  }

  /** `options`: TLS (ca, cert, key) and where to connect from (localAddress), as ws takes them. */
  static connect(url: string, headers: Record<string, string>, protocols?: string[], options: WebSocket.ClientOptions = {}): Promise<WireClient> {
    const ws = new WebSocket(url, protocols ?? [], { ...options, headers, perMessageDeflate: false });
    const client = new WireClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(type: number, content: Uint8Array | string = new Uint8Array(0)): void {
    this.ws.send(encodeRequest(type, typeof content === 'string' ? utf8(content) : content));
  }

  /** Types each character as its own PLAIN message, as original clients do. */
  type(text: string): void {
    for (const ch of text) this.send(0, ch);
  }

  /** All STDOUT content so far, decoded message by message as an original client would. */
  stdoutText(): string {
    return this.messages.filter((m) => m.msgType === ResponseType.STDOUT).map((m) => new TextDecoder().decode(m.content)).join('');
  }

  /** Waits until `predicate` holds over the messages so far, or fails after `timeoutMs`. */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout so far: ${JSON.stringify(this.stdoutText().slice(-500))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, Math.max(1, deadline - Date.now())).unref();
      });
      if (this.ws.readyState === WebSocket.CLOSED && !predicate()) {
        const close = this.closeMessage();
        throw new Error(`socket closed while waiting for ${what}; CLOSE: ${JSON.stringify(close ? new TextDecoder().decode(close.content) : null)}; stdout: ${JSON.stringify(this.stdoutText().slice(-500))}`);
      }
    }
  }

  closeMessage(): ResponseMessage | undefined {
    return this.messages.find((m) => m.msgType === ResponseType.CLOSE);
  }
}
