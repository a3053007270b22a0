import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { openExecSocket } from '../../broker/kubernetes/exec-socket.js';
import { KubeClient } from '../../broker/kubernetes/kube-client.js';
import { issue, makeCa, type TestCa } from '../helpers/certs.js';

/** What the apiserver stand-in saw of each TLS connection. */
interface Seen {
  path: string;
  resumed: boolean;
  clientSerial: string;
}

describe('the Kubernetes client over TLS', () => {
  let ca: TestCa;
  let dir: string;
  let server: Server;
  let port: number;
  const seen: Seen[] = [];
  const record = (socket: TLSSocket, path: string) => seen.push({ path, resumed: socket.isSessionReused(), clientSerial: socket.getPeerX509Certificate()?.serialNumber ?? '' });

  beforeAll(async () => {
    ca = makeCa('Entry Kube TLS CA');
    dir = mkdtempSync(join(tmpdir(), 'entry-kube-tls-'));
    const tls = issue(ca, 'apiserver', { sans: ['127.0.0.1'] });
    server = createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), ca: ca.pem(), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      record(req.socket as TLSSocket, req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ kind: 'PodList', items: [] }));
    });
    // pods/exec: accept the channel protocol, answer Success on the status channel, close.
    const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
    server.on('upgrade', (req, socket, head) => {
      record(socket as TLSSocket, req.url ?? '');
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(Buffer.concat([Buffer.of(3), Buffer.from('{"status":"Success"}')]));
        ws.close(1000);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
    rmSync(ca.dir, { recursive: true, force: true });
  });

  /** A kubeconfig naming the client certificate's files by path, as kubeadm's do. */
  function kubeconfig(certFile: string, keyFile: string): string {
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': ca.pem().toString('base64') } }],
        users: [{ name: 'broker', user: { 'client-certificate': certFile, 'client-key': keyFile } }],
        contexts: [{ name: 'local', context: { cluster: 'local', user: 'broker' } }],
        'current-context': 'local',
      }),
    );
    return path;
  }

  const execOnce = async (client: KubeClient) => {
    const ws = await openExecSocket(client, { namespace: 'default', pod: 'p', container: 'main' }, { command: ['true'], tty: false, stdin: false });
    await new Promise<void>((resolve) => {
      ws.on('close', () => resolve());
      ws.resume();
    });
  };

  it('resumes its TLS session on later calls and exec sockets instead of a full handshake each', async () => {
    const cert = issue(ca, 'broker', { client: true });
    const client = KubeClient.load({ kubeconfig: kubeconfig(cert.cert, cert.key) });
    seen.length = 0;
    await client.getJson('/api/v1/pods', 'pod_list');
    await execOnce(client);
    await execOnce(client);
    await client.getJson('/api/v1/pods', 'pod_list');
    expect(seen.map((s) => s.resumed)).toEqual([false, true, true, true]);
    expect(seen[1]!.path).toMatch(/\/exec\?command=true/);
    expect(new Set(seen.map((s) => s.clientSerial))).toEqual(new Set([cert.serial]));
  });

  it('presents a rotated client certificate on the next call, in a new handshake', async () => {
    const first = issue(ca, 'broker', { client: true, name: 'rotating-1' });
    const second = issue(ca, 'broker', { client: true, name: 'rotating-2' });
    const certFile = join(dir, 'client.pem');
    const keyFile = join(dir, 'client.key');
    copyFileSync(first.cert, certFile);
    copyFileSync(first.key, keyFile);
    const client = KubeClient.load({ kubeconfig: kubeconfig(certFile, keyFile) });
    seen.length = 0;
    await execOnce(client);
    await execOnce(client);
    copyFileSync(second.cert, certFile);
    copyFileSync(second.key, keyFile);
    await execOnce(client);
    await execOnce(client);
    expect(seen.map((s) => [s.clientSerial, s.resumed])).toEqual([
      [first.serial, false],
      [first.serial, true],
      [second.serial, false],
      [second.serial, true],
    ]);
  });
});
