/**
 * A relay that does nothing but move bytes: TCP on loopback in, the Docker socket out. The
 * benchmark drives direct exec through it to measure what any extra hop costs on the machine
 * (one more process, one more loopback TCP crossing), with none of Entry's work in it.
 * Prints the port it listens on, then runs until killed.
 */
import { connect, createServer } from 'node:net';

const dockerSocket = process.argv[2] ?? '/var/run/docker.sock';
const server = createServer((client) => {
  const engine = connect(dockerSocket);
  client.setNoDelay(true);
  client.pipe(engine);
  engine.pipe(client);
  client.on('error', () => engine.destroy());
  engine.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
