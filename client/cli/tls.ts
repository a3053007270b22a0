import { clientTlsFromEnv, tlsConnectOptions } from '../protocol/tls.js';

/**
 * --ca-file, --cert, --key (else ENTRY_CA_FILE, ENTRY_CERT_FILE, ENTRY_KEY_FILE) for every
 * connection the CLI makes: the WebSocket sessions read the variables, and the HTTP calls
 * (fetch: ls, status, login) go through a dispatcher with the same CA and certificate.
 */
export async function applyCliTls(flags: { caFile?: string | undefined; cert?: string | undefined; key?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (flags.caFile) env['ENTRY_CA_FILE'] = flags.caFile;
  if (flags.cert) env['ENTRY_CERT_FILE'] = flags.cert;
  if (flags.key) env['ENTRY_KEY_FILE'] = flags.key;
  const tls = clientTlsFromEnv(env);
  if (!tls) return;
  // undici only when there is TLS to set: loading it costs every other call ~60 ms.
  const { Agent, setGlobalDispatcher } = await import('undici');
  setGlobalDispatcher(new Agent({ connect: tlsConnectOptions(tls) }));
}
