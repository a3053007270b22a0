/**
 * The null relay over WebSocket: each WebSocket connection on loopback is piped to Docker's
 * socket, one binary message per read, as a broker must (RFC 6455 framing, client masking) but
 * with nothing of Entry's own (no protobuf, no session, no recording). It prices a WebSocket
 * hop. Prints the port it listens on, then runs until killed.
 */
import { connect } from 'node:net';
import { createWebSocketStream, WebSocketServer } from 'ws';

const dockerSocket = process.argv[2] ?? '/var/run/docker.sock';
const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
server.on('connection', (ws) => {
  const engine = connect(dockerSocket);
  const client = createWebSocketStream(ws);
  client.pipe(engine);
  engine.pipe(client);
  client.on('error', () => engine.destroy());
  engine.on('error', () => client.destroy());
});
server.on('listening', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
