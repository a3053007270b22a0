import { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ExecConnection, type ReconnectStatus } from '../../client/protocol/connection.js';
import { decodeRequest, encodeResponse, encodeResumeTicket, RequestType, ResponseType } from '../../proto/codec.js';

/**
 * A broker scripted by the test: each connection is answered (RESUMABLE, output) and dropped
 * when the test says, so that what the client does while it resumes can be looked at step by step.
 */
async function scriptedBroker() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const connections: Array<{ ws: WebSocket; requests: number[]; closed: Promise<number> }> = [];
  const arrived: Array<() => void> = [];
  wss.on('connection', (ws) => {
    const c = { ws, requests: [] as number[], closed: new Promise<number>((r) => ws.once('close', (code) => r(code))) };
    ws.on('message', (data: Buffer) => c.requests.push(decodeRequest(data).msgType));
    connections.push(c);
    arrived.shift()?.();
  });
  const next = () => new Promise<void>((r) => arrived.push(r));
  return { wss, connections, next, url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}` };
}

const ticket = encodeResumeTicket({ session: 's1', token: Buffer.alloc(16, 7), outputOffset: 0, inputOffset: 0, graceMs: 30_000, pingIntervalMs: 0 });

let servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const s of servers) {
    for (const c of s.clients) c.terminate();
    await new Promise((r) => s.close(r));
  }
  servers = [];
});

/** A session on a scripted broker, its connection told that the broker resumes it. */
async function resumableSession() {
  const b = await scriptedBroker();
  servers.push(b.wss);
  const first = b.next();
  const conn = await ExecConnection.open({ broker: b.url, token: 't', target: { app: 'a', proc: 'p', instance: 1 }, resume: true, spec: { argv: [Buffer.from('sh')] } });
  await first;
  b.connections[0]!.ws.send(encodeResponse(ResponseType.RESUMABLE, ticket));
  return { b, conn };
}

describe('closing a session while its connection is being resumed', () => {
  it('ends it on the resumed connection in order, and tells nothing after the end', async () => {
    const { b, conn } = await resumableSession();
    const out: string[] = [];
    conn.on('stdout', (d: Buffer) => out.push(d.toString()));
    b.connections[0]!.ws.send(encodeResponse(ResponseType.STDOUT, Buffer.from('before')));
    await new Promise<void>((r) => conn.once('stdout', () => r()));
    // The link breaks; the client reconnects and asks to resume; the broker does not answer yet.
    const second = b.next();
    b.connections[0]!.ws.terminate();
    await second;
    const resuming = b.connections[1]!;
    while (!resuming.requests.includes(RequestType.RESUME)) await new Promise((r) => setTimeout(r, 5));
    conn.close();
    const end = await conn.done;
    expect(end).toMatchObject({ code: 'ENTRY_CLOSED', message: 'closed by this client while reconnecting' });
    // The broker's answer comes after the end: none of it is told.
    resuming.ws.send(encodeResponse(ResponseType.RESUMABLE, ticket));
    resuming.ws.send(encodeResponse(ResponseType.STDOUT, Buffer.from('after')));
    // The resumed connection is closed in order: the broker ends the session's processes.
    expect(await resuming.closed).toBe(1000);
    expect(out).toEqual(['before']);
  });
});

describe('the tries of a resume', () => {
  it('are numbered from the break, across connections that opened and broke again', async () => {
    const { b, conn } = await resumableSession();
    const attempts: number[] = [];
    conn.on('reconnecting', (s: ReconnectStatus) => attempts.push(s.attempt));
    const resumeAsked = async (i: number) => {
      while (!b.connections[i]!.requests.includes(RequestType.RESUME)) await new Promise((r) => setTimeout(r, 5));
    };
    // The link breaks; the try's connection opens and breaks too before the broker answers.
    let next = b.next();
    b.connections[0]!.ws.terminate();
    await next;
    await resumeAsked(1);
    next = b.next();
    b.connections[1]!.ws.terminate();
    await next;
    await resumeAsked(2);
    expect(attempts).toEqual([1, 2]);
    // Taken back: the next break counts from one again.
    const resumed = new Promise((r) => conn.once('resumed', r));
    b.connections[2]!.ws.send(encodeResponse(ResponseType.RESUMABLE, ticket));
    await resumed;
    next = b.next();
    b.connections[2]!.ws.terminate();
    await next;
    await resumeAsked(3);
    expect(attempts).toEqual([1, 2, 1]);
    conn.close();
    await conn.done;
  });
});
